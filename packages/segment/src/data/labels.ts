/** Raw mask value -> train id tables of every mask kind, from the format files. */
import { camvidLabelTable } from './camvid.js';
import { cityscapesLabelTable } from './cityscapes.js';
import { IGNORE_INDEX, type MaskKind } from './dataset.js';
import { vocLabelTable } from './voc.js';

/**
 * Raw mask value -> train id table (`-1` = a value that must not occur: an error).
 */
export function labelTable(kind: MaskKind): Int16Array {
  const t = new Int16Array(256).fill(-1);
  t[IGNORE_INDEX] = IGNORE_INDEX;
  if (kind === 'voc') vocLabelTable(t);
  else if (kind === 'cityscapes-trainIds') cityscapesLabelTable(t, 'trainIds');
  else if (kind === 'cityscapes-labelIds') cityscapesLabelTable(t, 'labelIds');
  else camvidLabelTable(t);
  return t;
}
