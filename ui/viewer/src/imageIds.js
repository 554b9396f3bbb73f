// The one place that turns Casebank instances into Cornerstone image ids. Today it is WADO-URI
// (the stored Part 10 bytes through the dicom-image-loader's `wadouri:` scheme); a switch to
// WADO-RS changes only this module.
import { wadouri } from '@cornerstonejs/dicom-image-loader';

export function instanceImageId(instanceId, frame) {
  const url = new URL(`/api/instances/${instanceId}/dicom`, window.location.origin).href;
  return `wadouri:${url}${frame ? `?frame=${frame}` : ''}`;
}

// One image id per frame, in Instance Number order: a multi-frame instance (ultrasound cine,
// enhanced CT/MR) contributes each of its frames, so the stack scrolls and plays through them.
export async function seriesImageIds(instanceIds) {
  const perInstance = await Promise.all(
    instanceIds.map(async (instanceId) => {
      const imageId = instanceImageId(instanceId);
      const dataSet = await wadouri.dataSetCacheManager.load(imageId.slice('wadouri:'.length), undefined, imageId);
      const frames = dataSet.intString('x00280008') || 1;
      if (frames <= 1) return [imageId];
      return Array.from({ length: frames }, (_, i) => instanceImageId(instanceId, i + 1));
    }),
  );
  return perInstance.flat();
}
