// The one place that turns Casebank instances into Cornerstone image ids: Casebank's DICOMweb
// WADO-URI links (`/dicomweb/wado?requestType=WADO&...&contentType=application/dicom`, the stored
// Part 10 bytes) through the dicom-image-loader's `wadouri:` scheme.
import { wadouri } from '@cornerstonejs/dicom-image-loader';

export function instanceImageId(wadoUri, frame) {
  const url = new URL(wadoUri, window.location.origin).href;
  return `wadouri:${url}${frame ? `&frame=${frame}` : ''}`;
}

// One image id per frame, in Instance Number order: a multi-frame instance (ultrasound cine,
// enhanced CT/MR) contributes each of its frames, so the stack scrolls and plays through them.
export async function seriesImageIds(wadoUris) {
  const perInstance = await Promise.all(
    wadoUris.map(async (wadoUri) => {
      const imageId = instanceImageId(wadoUri);
      const dataSet = await wadouri.dataSetCacheManager.load(imageId.slice('wadouri:'.length), undefined, imageId);
      const frames = dataSet.intString('x00280008') || 1;
      if (frames <= 1) return [imageId];
      return Array.from({ length: frames }, (_, i) => instanceImageId(wadoUri, i + 1));
    }),
  );
  return perInstance.flat();
}
