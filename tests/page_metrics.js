// Measures what a reader sees on a built page; tests/test_book.py injects it and reads the
// result from the DOM (chromium --dump-dom): elements of the main column whose content is wider
// than their box, the page height, "<Figure size" texts, broken local images, and the first
// section heading after "Prerequisites".
window.addEventListener("load", () => {
  const main = document.querySelector("main article") || document.querySelector("main") ||
    document.body;
  const selectors = "pre, div.highlight, div.output, div.cell_output, table, .math, img";
  const visible = (el) => el.getClientRects().length > 0 &&
    getComputedStyle(el).visibility !== "hidden";
  const overflowing = [];
  for (const el of main.querySelectorAll(selectors)) {
    if (!visible(el)) continue;
    if (el.closest("details:not([open])")) continue;
    if (el.scrollWidth > el.clientWidth + 2) {
      overflowing.push({tag: el.tagName.toLowerCase(), cls: el.className,
        scroll: el.scrollWidth, client: el.clientWidth,
        text: (el.innerText || "").slice(0, 80)});
    }
  }
  const local = (src) => src.startsWith(location.origin);
  const broken = [...document.images].filter((img) => local(img.src) && img.complete &&
    img.naturalWidth === 0).map((img) => img.src);
  const headings = [...main.querySelectorAll("h2")].filter(visible)
    .map((h) => h.innerText.replace("#", "").trim());
  const prereq = headings.findIndex((h) => /prerequisites/i.test(h));
  const result = {
    overflowing, broken_images: broken,
    height: document.documentElement.scrollHeight,
    figure_text: main.innerText.includes("<Figure size"),
    headings, first_section: prereq >= 0 ? (headings[prereq + 1] || null) : (headings[0] || null),
  };
  const out = document.createElement("pre");
  out.id = "d2l-page-metrics";
  out.style.display = "none";
  out.textContent = JSON.stringify(result);
  document.body.appendChild(out);
});
