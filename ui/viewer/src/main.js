// Casebank's zero-footprint viewer: mounted on <div id="viewer" data-case-id="..."> of the case page.
import { RenderingEngine, init as initCore } from '@cornerstonejs/core';
import {
  LengthTool, PanTool, RectangleROITool, StackScrollTool, WindowLevelTool, ZoomTool,
  addTool, init as initTools,
} from '@cornerstonejs/tools';
import { init as initImageLoader } from '@cornerstonejs/dicom-image-loader';

import { mountSeries } from './panel.js';
import './viewer.css';

async function start(root) {
  const answer = await fetch(`/api/cases/${root.dataset.caseId}/viewer`);
  if (!answer.ok) return; // the server-rendered images stay
  const { series, can_edit: canEdit } = await answer.json();
  if (series.length === 0) return;
  await initCore();
  initTools();
  initImageLoader({ maxWebWorkers: 1 });
  for (const tool of [WindowLevelTool, PanTool, ZoomTool, StackScrollTool, LengthTool, RectangleROITool]) addTool(tool);
  root.replaceChildren();
  root.classList.add('cb-viewer');
  const engine = new RenderingEngine('casebank');
  for (const s of series) await mountSeries(root, engine, s, canEdit);
  root.dataset.ready = 'true';
}

const root = document.getElementById('viewer');
if (root) {
  start(root).catch((error) => {
    console.error(error);
    root.dataset.error = String(error);
  });
}
