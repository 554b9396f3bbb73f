// The public page's stack scroller: one <img> per series, moved through its images by the slider,
// the mouse wheel over the image or the arrow keys. Neighbouring images load ahead.
(() => {
  for (const figure of document.querySelectorAll(".stack")) {
    const img = figure.querySelector("img"), slider = figure.querySelector("input[type=range]");
    const urls = img.dataset.urls.split(" "), shown = figure.querySelector("output");
    if (!slider || urls.length < 2) continue;
    const title = figure.querySelector(".stack-title").textContent;
    const cache = new Map();
    const preload = (i) => {
      if (i < 0 || i >= urls.length || cache.has(i)) return;
      const image = new Image();
      image.src = urls[i];
      cache.set(i, image);
    };
    let index = 0;
    const show = (i) => {
      index = Math.max(0, Math.min(urls.length - 1, i));
      img.src = urls[index];
      img.alt = `${title}, image ${index + 1} of ${urls.length}`;
      slider.value = String(index + 1);
      shown.textContent = String(index + 1);
      for (const d of [1, -1, 2, -2]) preload(index + d);
    };
    slider.addEventListener("input", () => show(Number(slider.value) - 1));
    img.addEventListener("wheel", (event) => {
      event.preventDefault();
      show(index + Math.sign(event.deltaY));
    }, { passive: false });
    img.addEventListener("keydown", (event) => {
      const delta = { ArrowDown: 1, ArrowRight: 1, ArrowUp: -1, ArrowLeft: -1 }[event.key];
      if (delta === undefined) return;
      event.preventDefault();
      show(index + delta);
    });
    preload(1);
  }
})();
