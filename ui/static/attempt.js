// A self-test case: series buttons and a stack scroller over rendered images.
(() => {
  const series = JSON.parse(document.getElementById("attempt-series").textContent);
  let current = 0, slice = 0;
  const image = document.getElementById("image"), range = document.getElementById("slice");
  function show() {
    const s = series[current];
    if (!s) { document.getElementById("slice-label").textContent = "No images"; return; }
    slice = Math.max(0, Math.min(slice, s.instance_ids.length - 1));
    image.src = `/api/instances/${s.instance_ids[slice]}/rendered?size=1024`;
    range.max = s.instance_ids.length; range.value = slice + 1;
    document.getElementById("slice-label").textContent = `image ${slice + 1} of ${s.instance_ids.length}`;
  }
  document.querySelectorAll("[data-series]").forEach((b) => b.onclick = () => {
    current = Number(b.dataset.series); slice = Math.floor(series[current].instance_ids.length / 2);
    document.querySelectorAll("[data-series]").forEach((o) => o.setAttribute("aria-pressed", String(o === b))); show();
  });
  range.oninput = () => { slice = Number(range.value) - 1; show(); };
  image.addEventListener("wheel", (e) => { e.preventDefault(); slice += e.deltaY > 0 ? 1 : -1; show(); }, {passive: false});
  if (series[0]) slice = Math.floor(series[0].instance_ids.length / 2);
  show();
})();
