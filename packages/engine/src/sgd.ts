/**
 * SGD with momentum, Nesterov and decoupled-from-nothing (L2, PyTorch-style) weight decay,
 * with per-parameter weight-decay exclusion and a state that can be saved and restored.
 *
 * The update is exactly `torch.optim.SGD` (momentum buffer initialised to the first
 * gradient, `dampening` applied from the second step on):
 * ```
 * g = grad + wd * p                      (wd = 0 for excluded params)
 * buf = g                  (first step)  |  buf = momentum * buf + (1 - dampening) * g
 * g = nesterov ? g + momentum * buf : buf
 * p = p - lr * g
 * ```
 * On the native CPU backend, where the kernel self-check chose it for this host, a parameter
 * with a momentum buffer is updated by one native pass (`@refconv/core`'s `RefconvSgdUpdate`,
 * bit-identical to the tfjs ops below, about 3x their speed for large tensors).
 */
import * as tf from '@tensorflow/tfjs';
import { nativeSgdUpdate } from '@refconv/core';

/** A trainable parameter with a stable name (used as the key in saved optimizer state). */
export interface NamedParam {
  /** Stable, unique name, e.g. a layer weight's `originalName` (`conv1/kernel`). */
  name: string;
  /** The variable the optimizer updates in place. */
  variable: tf.Variable;
}

/** Options of {@link SGD}. */
export interface SgdOptions {
  /** Momentum factor (default 0.9; 0 = plain SGD). */
  momentum?: number;
  /** Dampening of the momentum (default 0, as PyTorch). */
  dampening?: number;
  /** Nesterov momentum (default false). */
  nesterov?: boolean;
  /** L2 weight decay added to the gradient (default 0). */
  weightDecay?: number;
  /**
   * Which parameters get weight decay. Default: all. {@link noDecayOnBiasAndNorm} excludes
   * rank <= 1 tensors (biases, BatchNorm gamma/beta), as timm's `weight_decay` param groups.
   */
  decayFilter?: (p: NamedParam) => boolean;
}

/** Weight-decay filter that skips biases and normalisation scales/offsets (rank <= 1 tensors). */
export const noDecayOnBiasAndNorm = (p: NamedParam): boolean => p.variable.shape.length > 1;

/** Serialisable optimizer state: step count and momentum buffers by parameter name. */
export interface SgdState {
  /** Number of `step()` calls done. */
  step: number;
  /** Momentum buffers (absent for parameters that have not been updated yet). */
  momentum: Record<string, { shape: number[]; data: Float32Array }>;
}

/** PyTorch-equivalent SGD over a fixed list of named variables. */
export class SGD {
  readonly momentum: number;
  readonly dampening: number;
  readonly nesterov: boolean;
  readonly weightDecay: number;
  private readonly params: NamedParam[];
  private readonly decays: boolean[];
  private readonly buffers = new Map<string, tf.Variable>();
  private steps = 0;

  constructor(params: NamedParam[], opts: SgdOptions = {}) {
    this.momentum = opts.momentum ?? 0.9;
    this.dampening = opts.dampening ?? 0;
    this.nesterov = opts.nesterov ?? false;
    this.weightDecay = opts.weightDecay ?? 0;
    if (this.momentum < 0) throw new Error(`SGD: momentum must be >= 0, got ${this.momentum}`);
    if (this.weightDecay < 0) throw new Error(`SGD: weightDecay must be >= 0, got ${this.weightDecay}`);
    if (this.nesterov && (this.momentum <= 0 || this.dampening !== 0)) {
      throw new Error('SGD: Nesterov momentum requires momentum > 0 and dampening = 0 (as torch.optim.SGD)');
    }
    const seen = new Set<string>();
    for (const p of params) {
      if (seen.has(p.name)) throw new Error(`SGD: duplicate parameter name '${p.name}'`);
      seen.add(p.name);
    }
    this.params = params;
    const filter = opts.decayFilter ?? (() => true);
    this.decays = params.map((p) => filter(p));
  }

  /** Number of steps taken so far. */
  get stepCount(): number {
    return this.steps;
  }

  /** Names of the parameters that receive weight decay (for logs/tests). */
  decayedParamNames(): string[] {
    return this.params.filter((_, i) => this.decays[i]).map((p) => p.name);
  }

  /**
   * Applies one update with learning rate `lr`. `grads` maps a parameter's name or its
   * variable's `name` to its gradient (as returned by `tf.variableGrads`); parameters without
   * a gradient are skipped (like PyTorch params whose `.grad` is None). Does not dispose `grads`.
   */
  step(grads: Record<string, tf.Tensor>, lr: number): void {
    if (!Number.isFinite(lr)) throw new Error(`SGD.step: learning rate must be finite, got ${lr}`);
    // One native pass per parameter where the kernel self-check chose it on this host (the same
    // float32 results as the ops below, which remain the route everywhere else).
    const fused = this.momentum !== 0 ? nativeSgdUpdate() : null;
    tf.tidy(() => {
      this.params.forEach((p, i) => {
        const grad = grads[p.name] ?? grads[p.variable.name];
        if (!grad) return;
        if (!tf.util.arraysEqual(grad.shape, p.variable.shape)) {
          throw new Error(`SGD.step: gradient of '${p.name}' has shape [${grad.shape}] but the parameter is [${p.variable.shape}]`);
        }
        const decay = this.weightDecay !== 0 && this.decays[i];
        const buffer = this.buffers.get(p.name);
        if (fused && buffer && grad.dtype === 'float32') {
          const [param, next] = fused(p.variable, buffer, grad, lr, {
            momentum: this.momentum, dampening: this.dampening, weightDecay: decay ? this.weightDecay : 0, nesterov: this.nesterov,
          });
          buffer.assign(next);
          p.variable.assign(param);
          return;
        }
        let g: tf.Tensor = grad;
        if (decay) g = tf.add(g, tf.mul(p.variable, this.weightDecay));
        if (this.momentum !== 0) {
          const buf = this.buffers.get(p.name);
          let next: tf.Tensor;
          if (!buf) {
            next = g;
            this.buffers.set(p.name, tf.variable(g, false)); // tidy frees g; the variable keeps the data
          } else {
            next = tf.add(tf.mul(buf, this.momentum), this.dampening === 0 ? g : tf.mul(g, 1 - this.dampening));
            buf.assign(next);
          }
          g = this.nesterov ? tf.add(g, tf.mul(next, this.momentum)) : next;
        }
        p.variable.assign(tf.sub(p.variable, tf.mul(g, lr)));
      });
    });
    this.steps++;
  }

  /** Copies the state to plain arrays (for checkpoints). */
  getState(): SgdState {
    const momentum: SgdState['momentum'] = {};
    for (const [name, buf] of this.buffers) momentum[name] = { shape: buf.shape.slice(), data: buf.dataSync() as Float32Array };
    return { step: this.steps, momentum };
  }

  /** Restores {@link SGD.getState}; buffer shapes must match the parameters. */
  setState(state: SgdState): void {
    const byName = new Map(this.params.map((p) => [p.name, p]));
    for (const [name, buf] of Object.entries(state.momentum)) {
      const p = byName.get(name);
      if (!p) throw new Error(`SGD.setState: saved momentum for unknown parameter '${name}'`);
      if (!tf.util.arraysEqual(buf.shape, p.variable.shape)) {
        throw new Error(`SGD.setState: momentum of '${name}' has shape [${buf.shape}] but the parameter is [${p.variable.shape}]`);
      }
    }
    this.disposeBuffers();
    for (const [name, buf] of Object.entries(state.momentum)) {
      const init = tf.tensor(buf.data, buf.shape, 'float32');
      this.buffers.set(name, tf.variable(init, false));
      init.dispose(); // the variable holds its own reference to the data
    }
    this.steps = state.step;
  }

  /** Frees the momentum buffers. */
  dispose(): void {
    this.disposeBuffers();
  }

  private disposeBuffers(): void {
    for (const b of this.buffers.values()) b.dispose();
    this.buffers.clear();
  }
}
