// The candidate's screen: follows the examiner over server-sent events (see api/routes/quizzes.py).
(() => {
  const data = JSON.parse(document.getElementById("exam-data").textContent);
  const token = data.token;
  let state = data.state;
  let seriesIndex = 0, slice = 0, deadline = null;
  const $ = (id) => document.getElementById(id);
  const text = (tag, content, cls) => { const el = document.createElement(tag); el.textContent = content; if (cls) el.className = cls; return el; };
  const names = {history: "Clinical history", findings: "Findings", diagnosis: "Diagnosis", differential: "Differential diagnosis", discussion: "Discussion"};

  function showImage() {
    const series = state.case.series[seriesIndex];
    if (!series) { $("image").removeAttribute("src"); $("slice-label").textContent = "No images"; return; }
    const ids = series.instance_ids;
    slice = Math.max(0, Math.min(slice, ids.length - 1));
    $("image").src = `/exam/${token}/images/${ids[slice]}.png`;
    $("slice").max = ids.length; $("slice").value = slice + 1;
    $("slice-label").textContent = `image ${slice + 1} of ${ids.length}`;
  }

  function render() {
    const c = state.case;
    $("label").textContent = c.label;
    $("progress").textContent = `Case ${c.position} of ${c.total}` + (state.finished ? " · finished" : "");
    const seriesBar = $("series"); seriesBar.replaceChildren();
    c.series.forEach((s, i) => {
      const b = text("button", s.label); b.type = "button"; b.setAttribute("aria-pressed", String(i === seriesIndex));
      b.onclick = () => { seriesIndex = i; slice = Math.floor(s.instance_ids.length / 2); render(); };
      seriesBar.append(b);
    });
    const fields = $("fields"); fields.replaceChildren();
    for (const [name, value] of Object.entries(c.fields)) { fields.append(text("h3", names[name] || name), text("p", value)); }
    if (c.keywords.length) fields.append(text("h3", "Keywords"), text("p", c.keywords.join(", ")));
    if (c.codes.length) fields.append(text("h3", "Codes"), text("p", c.codes.join("; ")));
    const answer = $("answer"); answer.replaceChildren();
    if (c.answer) {
      answer.hidden = false;
      answer.append(text("h2", "Answer"), text("p", c.answer.title || "", "exam-answer-title"));
      for (const name of ["diagnosis", "differential", "findings", "discussion"]) {
        if (c.answer[name]) answer.append(text("h3", names[name]), text("p", c.answer[name]));
      }
      if (c.answer.codes.length) answer.append(text("h3", "Codes"), text("p", c.answer.codes.join("; ")));
    } else { answer.hidden = true; }
    const all = $("answers"); all.replaceChildren();
    if (state.answers.length) {
      all.hidden = false; all.append(text("h2", "Answers"));
      const list = document.createElement("ol");
      for (const a of state.answers) list.append(text("li", `${a.title || "Case " + a.position}: ${a.diagnosis}`));
      all.append(list);
    } else { all.hidden = true; }
    deadline = state.seconds_left == null ? null : Date.now() + state.seconds_left * 1000;
    showImage();
  }

  function tick() {
    if (deadline == null) { $("timer").textContent = ""; return; }
    const left = Math.max(0, Math.round((deadline - Date.now()) / 1000));
    $("timer").textContent = left > 0 ? `${Math.floor(left / 60)}:${String(left % 60).padStart(2, "0")} left` : "Time is up";
  }

  function connect() {
    const events = new EventSource(`/exam/${token}/events`);
    events.onopen = () => { $("link-state").textContent = "live"; };
    events.onmessage = (e) => {
      const next = JSON.parse(e.data);
      if (next.case.position !== state.case.position) { seriesIndex = 0; slice = 0; }
      state = next; document.body.dataset.revision = String(state.revision); render();
    };
    events.addEventListener("ended", () => { $("link-state").textContent = "the exam has ended"; events.close(); });
    events.onerror = () => { $("link-state").textContent = "reconnecting…"; };
  }

  $("slice").oninput = (e) => { slice = Number(e.target.value) - 1; showImage(); };
  $("image").addEventListener("wheel", (e) => { e.preventDefault(); slice += e.deltaY > 0 ? 1 : -1; showImage(); }, {passive: false});
  document.addEventListener("keydown", (e) => {
    if (e.key === "ArrowDown" || e.key === "ArrowRight") { slice += 1; showImage(); }
    if (e.key === "ArrowUp" || e.key === "ArrowLeft") { slice -= 1; showImage(); }
  });
  document.body.dataset.revision = String(state.revision);
  const first = state.case.series[0]; if (first) slice = Math.floor(first.instance_ids.length / 2);
  render(); setInterval(tick, 250); connect();
})();
