// The case page's "Share publicly": the case's live public links with their view counts, each
// with "Withdraw" (DELETE /api/public-links/{id}, sent with the page's CSRF token).
(() => {
  const section = document.getElementById("share-public");
  const list = section && section.querySelector(".public-link-list");
  if (!list) return;
  const caseId = section.dataset.caseId;
  const csrf = document.querySelector('meta[name="csrf-token"]')?.content ?? "";
  const day = (iso) => new Date(iso).toLocaleDateString("en-GB", { day: "numeric", month: "short", year: "numeric", timeZone: "UTC" });
  const utc = (iso) => (/[zZ]|[+-]\d\d:\d\d$/.test(iso) ? iso : `${iso}Z`);  // SQLite answers without a zone

  const item = (link) => {
    const li = document.createElement("li");
    li.dataset.linkId = String(link.id);
    const about = `Published ${day(utc(link.created_at))} · ${link.expires_at ? `expires ${day(utc(link.expires_at))}` : "no expiry"}`;
    const parts = [
      ["about", about],
      ["images", `${link.images} image${link.images === 1 ? "" : "s"} ·`],
      ["views", `${link.views} view${link.views === 1 ? "" : "s"}`],
    ];
    for (const [kind, text] of parts) {
      const span = document.createElement("span");
      span.className = kind;
      span.textContent = text;
      li.append(span);
    }
    const button = document.createElement("button");
    button.type = "button";
    button.className = "danger";
    button.textContent = "Withdraw";
    button.addEventListener("click", async () => {
      button.disabled = true;
      const answer = await fetch(`/api/public-links/${link.id}`, { method: "DELETE", headers: { "X-CSRF-Token": csrf } });
      if (!answer.ok) button.disabled = false;
      await load();
    });
    li.append(button);
    return li;
  };

  async function load() {
    const answer = await fetch(`/api/cases/${caseId}/public-links`);
    if (!answer.ok) return;
    const links = await answer.json();
    const live = links.filter((l) => l.state === "live");
    const ended = links.length - live.length;
    const empty = document.createElement("li");
    empty.className = "empty";
    empty.textContent = "No live public links." + (ended ? ` ${ended} earlier link${ended === 1 ? " no longer works" : "s no longer work"}.` : "");
    list.replaceChildren(...(live.length ? live.map(item) : [empty]));
    section.dataset.loaded = "true";
  }

  load();
})();
