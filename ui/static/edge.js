// The edge's pages (no inline scripts: the Content-Security-Policy allows scripts from /static only).

// Preview: drag across an image to fill its "blank another area" field, in image pixels.
document.querySelectorAll("img.pick-region").forEach((img) => {
  const field = img.closest("article")?.querySelector("input[name=add]");
  if (!field) return;
  let start = null;
  const at = (e) => {
    const box = img.getBoundingClientRect();
    return [Math.round((e.clientX - box.left) * img.dataset.columns / box.width),
            Math.round((e.clientY - box.top) * img.dataset.rows / box.height)];
  };
  img.addEventListener("mousedown", (e) => { e.preventDefault(); start = at(e); });
  img.addEventListener("mouseup", (e) => {
    if (!start) return;
    const end = at(e);
    const x = Math.max(0, Math.min(start[0], end[0])), y = Math.max(0, Math.min(start[1], end[1]));
    field.value = [x, y, Math.abs(end[0] - start[0]) || 1, Math.abs(end[1] - start[1]) || 1].join(",");
    field.focus();
    start = null;
  });
});

// Study page: pick single images without leaving the page (the typed teaching text stays);
// without JavaScript the link reloads the page with the series opened instead.
document.querySelectorAll("a.pick-images").forEach((link) => {
  link.addEventListener("click", async (event) => {
    event.preventDefault();
    const row = link.closest("tr");
    if (row.nextElementSibling?.classList.contains("images-row")) return;
    const study = new URL(link.href).pathname;  // /studies/STUDY_UID
    const reply = await fetch(`${study}/series/${link.dataset.series}/images`);
    if (!reply.ok) { link.textContent = "could not list the images"; return; }
    const cell = Object.assign(document.createElement("td"), { colSpan: 4 });
    for (const image of await reply.json()) {
      const label = Object.assign(document.createElement("label"), { className: "pick" });
      const box = Object.assign(document.createElement("input"), { type: "checkbox", name: "image", value: `${link.dataset.series}/${image.sop_uid}` });
      label.append(box, ` image ${image.number}`);
      cell.append(label);
    }
    const images = Object.assign(document.createElement("tr"), { className: "images-row" });
    images.append(document.createElement("td"), cell);
    row.after(images);
  });
});
