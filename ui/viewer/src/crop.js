// A series' saved crop is the displayed region as a rectangle in image pixels, so it opens the
// same on any screen: read it from the camera, and set a camera that shows it.
import { metaData, utilities } from '@cornerstonejs/core';

export function displayedCrop(viewport) {
  const imageId = viewport.getCurrentImageId();
  const { clientWidth: w, clientHeight: h } = viewport.canvas;
  const [x0, y0] = utilities.worldToImageCoords(imageId, viewport.canvasToWorld([0, 0]));
  const [x1, y1] = utilities.worldToImageCoords(imageId, viewport.canvasToWorld([w, h]));
  return { x: Math.min(x0, x1), y: Math.min(y0, y1), width: Math.abs(x1 - x0), height: Math.abs(y1 - y0) };
}

export function showCrop(viewport, crop) {
  const imageId = viewport.getCurrentImageId();
  const center = utilities.imageToWorldCoords(imageId, [crop.x + crop.width / 2, crop.y + crop.height / 2]);
  const plane = metaData.get('imagePlaneModule', imageId) || {};
  const columnSpacing = plane.columnPixelSpacing || 1;
  const rowSpacing = plane.rowPixelSpacing || 1;
  const { clientWidth: w, clientHeight: h } = viewport.canvas;
  const camera = viewport.getCamera();
  const offset = camera.position.map((p, i) => p - camera.focalPoint[i]);
  // parallelScale is half the viewport's height in world units: fit both sides of the rectangle
  const parallelScale = Math.max((crop.height * rowSpacing) / 2, ((crop.width * columnSpacing) / 2) * (h / w));
  viewport.setCamera({ focalPoint: center, position: center.map((c, i) => c + offset[i]), parallelScale });
}
