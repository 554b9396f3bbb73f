// One series in a stack viewport with the IHE Basic Image Review functions: window by drag and
// presets, pan, zoom, scroll, cine, length and rectangle ROI, reset; and "Save as default".
import { Enums, utilities } from '@cornerstonejs/core';
import {
  LengthTool, PanTool, RectangleROITool, StackScrollTool, ToolGroupManager, WindowLevelTool, ZoomTool,
  Enums as ToolEnums, utilities as toolUtilities,
} from '@cornerstonejs/tools';

import { displayedCrop, showCrop } from './crop.js';
import { seriesImageIds } from './imageIds.js';

const { MouseBindings, KeyboardBindings } = ToolEnums;

export const PRESETS = [
  ['Lung', -600, 1500],
  ['Mediastinum', 50, 350],
  ['Bone', 300, 1500],
  ['Brain', 40, 80],
  ['Abdomen', 40, 400],
];

// what the left mouse button does; the others keep their bindings
const PRIMARY_TOOLS = [
  ['Window', WindowLevelTool.toolName],
  ['Pan', PanTool.toolName],
  ['Length', LengthTool.toolName],
  ['Rectangle ROI', RectangleROITool.toolName],
];

/** The page's CSRF token (<meta name="csrf-token"> in base.html), sent on every write. */
function csrfToken() {
  return document.querySelector('meta[name="csrf-token"]')?.content ?? '';
}

function element(tag, attributes = {}, children = []) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (key === 'onclick') node.addEventListener('click', value);
    else if (key === 'text') node.textContent = value;
    else node.setAttribute(key, value);
  }
  node.append(...children);
  return node;
}

function button(label, onclick, attributes = {}) {
  return element('button', { type: 'button', text: label, onclick, ...attributes });
}

function createToolGroup(id, viewportId, engineId) {
  const group = ToolGroupManager.createToolGroup(id);
  for (const [, name] of PRIMARY_TOOLS) group.addTool(name);
  group.addTool(ZoomTool.toolName);
  group.addTool(StackScrollTool.toolName);
  group.addViewport(viewportId, engineId);
  group.setToolActive(WindowLevelTool.toolName, { bindings: [{ mouseButton: MouseBindings.Primary }] });
  group.setToolActive(PanTool.toolName, { bindings: [{ mouseButton: MouseBindings.Auxiliary }] });
  group.setToolActive(ZoomTool.toolName, {
    bindings: [
      { mouseButton: MouseBindings.Secondary },
      { mouseButton: MouseBindings.Wheel, modifierKey: KeyboardBindings.Ctrl },
    ],
  });
  group.setToolActive(StackScrollTool.toolName, { bindings: [{ mouseButton: MouseBindings.Wheel }] });
  return group;
}

function setPrimaryTool(group, chosen) {
  for (const [, name] of PRIMARY_TOOLS) {
    if (name === chosen) continue;
    // Pan keeps its middle-button binding when another tool takes the left button
    if (name === PanTool.toolName) {
      group.setToolActive(name, { bindings: [{ mouseButton: MouseBindings.Auxiliary }] });
    } else {
      group.setToolPassive(name);
    }
  }
  const bindings = [{ mouseButton: MouseBindings.Primary }];
  if (chosen === PanTool.toolName) bindings.push({ mouseButton: MouseBindings.Auxiliary });
  group.setToolActive(chosen, { bindings });
}

export async function mountSeries(container, engine, series, canEdit) {
  const viewportId = `series-${series.id}`;
  const view = element('div', { class: 'cb-viewport', tabindex: '0', 'aria-label': `${series.modality} series viewport` });
  const windowText = element('span', { class: 'cb-window', 'data-testid': 'window' });
  const positionText = element('span', { class: 'cb-position' });
  const status = element('span', { class: 'cb-status', role: 'status' });
  const overlay = element('div', { class: 'cb-overlay' }, [windowText, positionText]);
  const toolButtons = PRIMARY_TOOLS.map(([label, name]) =>
    button(label, () => {
      setPrimaryTool(group, name);
      toolButtons.forEach((b, i) => b.setAttribute('aria-pressed', String(PRIMARY_TOOLS[i][1] === name)));
    }, { 'aria-pressed': String(name === WindowLevelTool.toolName) }),
  );
  const cineButton = button('Play', () => toggleCine());
  const toolbar = element('div', { class: 'cb-toolbar', role: 'toolbar' }, [
    element('span', { class: 'cb-group' }, PRESETS.map(([label, center, width]) => button(label, () => setWindow(center, width)))),
    element('span', { class: 'cb-group' }, toolButtons),
    element('span', { class: 'cb-group' }, [cineButton, button('Reset', () => reset())]),
    ...(canEdit ? [button('Save as default', () => saveDefault(), { class: 'cb-save' })] : []),
    status,
  ]);
  const title = element('h3', { text: `${series.modality} ${series.body_part} · ${series.description || `series ${series.series_number ?? ''}`}` });
  container.append(element('section', { class: 'cb-series', 'data-series-id': String(series.id) }, [title, toolbar, element('div', { class: 'cb-stage' }, [view, overlay])]));
  view.addEventListener('contextmenu', (event) => event.preventDefault());

  engine.enableElement({ viewportId, type: Enums.ViewportType.STACK, element: view, defaultOptions: { background: [0, 0, 0] } });
  const viewport = engine.getViewport(viewportId);
  const group = createToolGroup(`casebank-${series.id}`, viewportId, engine.id);
  let saved = series.display;
  let playing = false;
  let imageIds = [];

  function currentWindow() {
    const { voiRange } = viewport.getProperties();
    if (!voiRange) return null;
    const { windowCenter, windowWidth } = utilities.windowLevel.toWindowLevel(voiRange.lower, voiRange.upper);
    return { center: windowCenter, width: windowWidth };
  }

  function showWindow() {
    const current = currentWindow();
    windowText.textContent = current ? `W ${Math.round(current.width)} L ${Math.round(current.center)}` : '';
  }

  function showPosition() {
    positionText.textContent = `Im ${viewport.getCurrentImageIdIndex() + 1}/${imageIds.length}`;
  }

  function setWindow(center, width) {
    viewport.setProperties({ voiRange: utilities.windowLevel.toLowHighRange(width, center) });
    viewport.render();
  }

  // How the series opens: the image's own VOI and photometric inversion as setStack leaves them
  // (resetProperties is not used: with a MONOCHROME1 image it can leave the inversion off), then
  // the saved window and crop.
  function openAsSaved() {
    viewport.resetCamera();
    if (saved.window_center != null && saved.window_width != null) setWindow(saved.window_center, saved.window_width);
    if (saved.crop) showCrop(viewport, saved.crop);
    viewport.render();
    showWindow();
  }

  async function reset() {
    await viewport.setStack(imageIds, viewport.getCurrentImageIdIndex());
    openAsSaved();
  }

  function toggleCine() {
    playing = !playing;
    if (playing) toolUtilities.cine.playClip(view, { framesPerSecond: 10, loop: true });
    else toolUtilities.cine.stopClip(view);
    cineButton.textContent = playing ? 'Pause' : 'Play';
  }

  async function saveDefault() {
    const current = currentWindow();
    status.textContent = 'Saving…';
    const response = await fetch(`/api/series/${series.id}/display`, {
      method: 'PUT',
      // the archive refuses cookie-authenticated writes without the page's CSRF token
      headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': csrfToken() },
      body: JSON.stringify({ window_center: current.center, window_width: current.width, crop: displayedCrop(viewport) }),
    });
    const body = await response.json();
    if (response.ok) saved = body;
    status.textContent = response.ok ? 'Saved as default' : body.detail || body.title;
  }

  view.addEventListener(Enums.Events.VOI_MODIFIED, showWindow);
  view.addEventListener(Enums.Events.STACK_NEW_IMAGE, showPosition);
  view.addEventListener('keydown', (event) => {
    const delta = { ArrowDown: 1, ArrowRight: 1, ArrowUp: -1, ArrowLeft: -1 }[event.key];
    if (delta === undefined) return;
    event.preventDefault();
    viewport.scroll(delta);
  });

  status.textContent = 'Loading…';
  imageIds = await seriesImageIds(series.wado_uris);
  if (imageIds.length < 2) cineButton.disabled = true;
  await viewport.setStack(imageIds, 0);
  openAsSaved();
  showPosition();
  status.textContent = '';
  view.dataset.ready = 'true';
  return viewport;
}
