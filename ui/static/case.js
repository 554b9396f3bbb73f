// Terminology autocomplete for the code field (no framework: the datalist is filled as you type).
(() => {
  const form = document.querySelector(".code-form");
  if (!form) return;
  const input = form.querySelector("input[name=code]"), list = document.getElementById("code-suggestions");
  let timer;
  input.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(async () => {
      const system = form.querySelector("select[name=system]").value, q = input.value.trim();
      if (q.length < 2) return;
      const reply = await fetch(`/api/terminology/${system}/suggest?q=${encodeURIComponent(q)}&limit=12`);
      if (!reply.ok) return;
      list.replaceChildren(...(await reply.json()).map((c) => Object.assign(document.createElement("option"), {value: `${c.code} ${c.display}`})));
    }, 150);
  });
})();
