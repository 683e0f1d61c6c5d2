/** Opens a dataset folder, detecting its layout. */
import * as fs from 'node:fs';
import type { ClassificationData } from './dataset.js';
import { isFashionMnistDir, loadFashionMnist, SHIPPED_FASHION_MNIST, SYSTEM_FASHION_MNIST } from './fashion-mnist.js';
import { loadImageFolder, type ImageFolderOptions } from './image-folder.js';

/** Dataset layouts the pipeline reads. */
export type DataFormat = 'auto' | 'fashion-mnist' | 'imagefolder';

/**
 * Opens `root` as Fashion-MNIST (the four IDX files) or an ImageFolder tree. `root` may be the
 * word `fashion-mnist`, meaning the copy shipped in `datasets/fashion-mnist` (or the system one).
 */
export function openDataset(root: string, format: DataFormat = 'auto', opts: ImageFolderOptions = {}): ClassificationData {
  if (root === 'fashion-mnist') {
    const dir = [SHIPPED_FASHION_MNIST, SYSTEM_FASHION_MNIST].find((d) => isFashionMnistDir(d));
    if (!dir) throw new Error(`Fashion-MNIST not found in ${SHIPPED_FASHION_MNIST} or ${SYSTEM_FASHION_MNIST}`);
    return loadFashionMnist(dir);
  }
  if (!fs.existsSync(root)) throw new Error(`dataset folder ${root} does not exist`);
  if (!fs.statSync(root).isDirectory()) throw new Error(`dataset ${root} is not a folder`);
  if (format === 'fashion-mnist' || (format === 'auto' && isFashionMnistDir(root))) return loadFashionMnist(root);
  return loadImageFolder(root, opts);
}
