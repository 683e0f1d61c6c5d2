/**
 * Walking a tfjs LayersModel's layer applications in dependency order, as a converter to another
 * graph format needs (compileForInference's TensorFlow graph, @refconv/deploy's ONNX export).
 */
import * as tf from '@tensorflow/tfjs';

/** One application of a layer (a layer shared across levels has one per use). */
export type LayerNode = tf.layers.Layer['inboundNodes'][number];

/**
 * Calls `visit(layer, node)` for every application of a layer inside `container` (input layers
 * excluded) once all of its input tensors are in `available` (tensor ids), and adds each node's
 * outputs to `available` after the visit. A shared layer's applications may sit at several depths;
 * `containerNodes` says which of them belong to this container. `what` names the caller in errors.
 */
export function visitLayerNodesInOrder(container: tf.LayersModel, available: Set<number>, visit: (layer: tf.layers.Layer, node: LayerNode) => void, what: string): void {
  const keys = (container as unknown as { containerNodes?: Set<string> }).containerNodes;
  const todo: { layer: tf.layers.Layer; node: LayerNode }[] = [];
  for (const layer of container.layers) {
    if (layer.getClassName() === 'InputLayer') continue;
    layer.inboundNodes.forEach((node, k) => {
      if (keys ? keys.has(`${layer.name}_ib-${k}`) : layer.inboundNodes.length === 1) todo.push({ layer, node });
    });
  }
  while (todo.length > 0) {
    const i = todo.findIndex(({ node }) => node.inputTensors.every((t) => available.has(t.id)));
    if (i < 0) throw new Error(`${what}: internal error, no computable layer left in '${container.name}' (next: '${todo[0]!.layer.name}')`);
    const [{ layer, node }] = todo.splice(i, 1) as [{ layer: tf.layers.Layer; node: LayerNode }];
    visit(layer, node);
    for (const t of node.outputTensors) available.add(t.id);
  }
}
