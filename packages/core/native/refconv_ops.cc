// RefConv's own TensorFlow CPU kernels, registered into the TensorFlow library that tfjs-node has
// already loaded, so tfjs-node's eager `executeOp` runs them like any built-in op.
//
// Why: two training costs have no single TensorFlow op that tfjs can call.
//   * The momentum-SGD update is 4 elementwise kernels in tfjs (mul, add, mul, sub), each a full
//     pass over the parameter plus a fresh allocation. For MobileNetV2 with RefConv that is 40.6 M
//     transform weights per step, a memory-bound cost larger than the RefConv forward itself.
//     `RefconvSgdUpdate` is one pass: read param, buffer, gradient; write param and buffer.
//   * TF's CPU `MaxPoolGrad` (Eigen) takes ~4x PyTorch's time for ResNet's stem pool.
//     `RefconvMaxPoolGrad` recomputes each window's argmax vectorised over channels (NHWC) and
//     adds the gradient there, with TF's tie rule (the first maximum in row-major window order).
//   * RefConv's per-kernel transform (the official choice for regular convs: one mapK x mapK
//     filter per 2-D kernel) is a depthwise conv over a K x K "image" of Cin * Cout channels
//     (1.2 M for ResNet-18). TF's depthwise kernels are built for large maps and few channels;
//     for ResNet-18's 17 transforms they took 16.6 ms (forward) and 18.4 ms (filter gradient) per
//     step on an AVX-512 EPYC (`nx run bench:transforms`), for work that is a few passes over
//     44 MB. `RefconvRefocusPerKernel` and its transform gradient `RefconvRefocusPerKernelGrad`
//     are those two loops over channel blocks: 10.4 and 10.6 ms there.
//
// Arithmetic is written to match what the tfjs op sequence computes, operation by operation in
// float32 (built with -ffp-contract=off, so no fused multiply-adds change the rounding): results
// are bit-identical to the tfjs route, which the tests and the kernel self-check verify.
//
// The file is also a Node-API module: loading it (`require`) registers the ops once.
#include <node_api.h>

#include <algorithm>
#include <cmath>
#include <array>
#include <cstdint>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "tensorflow/c/tf_status.h"
#include "tensorflow/c/tf_tensor.h"

// The kernel and op registration functions of TensorFlow's C API (tensorflow/c/kernels.h and
// tensorflow/c/ops.h, exported by libtensorflow_framework since TF 2.x). Declared here rather
// than included: those headers pull in stream-executor and runtime headers that the pip wheel's
// C headers, which the installer extracts, do not carry.
extern "C" {
typedef struct TF_OpKernelConstruction TF_OpKernelConstruction;
typedef struct TF_OpKernelContext TF_OpKernelContext;
typedef struct TF_KernelBuilder TF_KernelBuilder;
typedef struct TF_OpDefinitionBuilder TF_OpDefinitionBuilder;
TF_KernelBuilder* TF_NewKernelBuilder(const char* op_name, const char* device_name,
                                      void* (*create_func)(TF_OpKernelConstruction*),
                                      void (*compute_func)(void*, TF_OpKernelContext*), void (*delete_func)(void*));
void TF_RegisterKernelBuilder(const char* kernel_name, TF_KernelBuilder* builder, TF_Status* status);
void TF_GetInput(TF_OpKernelContext* ctx, int i, TF_Tensor** tensor, TF_Status* status);
TF_Tensor* TF_AllocateOutput(TF_OpKernelContext* context, int index, TF_DataType dtype, const int64_t* dims, int num_dims,
                             size_t len, TF_Status* status);
void TF_OpKernelContext_Failure(TF_OpKernelContext* ctx, TF_Status* status);
void TF_OpKernelConstruction_Failure(TF_OpKernelConstruction* ctx, TF_Status* status);
void TF_OpKernelConstruction_GetAttrFloat(TF_OpKernelConstruction* ctx, const char* attr_name, float* val, TF_Status* status);
void TF_OpKernelConstruction_GetAttrBool(TF_OpKernelConstruction* ctx, const char* attr_name, unsigned char* val, TF_Status* status);
void TF_OpKernelConstruction_GetAttrInt64(TF_OpKernelConstruction* ctx, const char* attr_name, int64_t* val, TF_Status* status);
void TF_OpKernelConstruction_GetAttrInt64List(TF_OpKernelConstruction* ctx, const char* attr_name, int64_t* vals, int max_vals,
                                              TF_Status* status);
TF_OpDefinitionBuilder* TF_NewOpDefinitionBuilder(const char* op_name);
void TF_RegisterOpDefinition(TF_OpDefinitionBuilder* builder, TF_Status* status);
void TF_OpDefinitionBuilderAddAttr(TF_OpDefinitionBuilder* builder, const char* attr_spec);
void TF_OpDefinitionBuilderAddInput(TF_OpDefinitionBuilder* builder, const char* input_spec);
void TF_OpDefinitionBuilderAddOutput(TF_OpDefinitionBuilder* builder, const char* output_spec);
}

namespace {

int g_threads = std::max(1u, std::thread::hardware_concurrency());

// Runs fn(chunk, begin, end) over [0, n) in up to g_threads contiguous chunks of at least `grain`
// items; returns the number of chunks (chunk indexes are 0 .. that - 1).
template <typename Fn>
int64_t ParallelForChunks(int64_t n, int64_t grain, Fn fn) {
  int64_t chunks = std::min<int64_t>(g_threads, std::max<int64_t>(1, n / std::max<int64_t>(grain, 1)));
  if (chunks <= 1) {
    fn(int64_t{0}, int64_t{0}, n);
    return 1;
  }
  std::vector<std::thread> workers;
  workers.reserve(chunks - 1);
  const int64_t step = (n + chunks - 1) / chunks;
  for (int64_t c = 1; c < chunks; ++c) {
    const int64_t b = c * step, e = std::min(n, b + step);
    if (b < e) workers.emplace_back([=] { fn(c, b, e); });
  }
  fn(int64_t{0}, int64_t{0}, std::min(n, step));
  for (auto& w : workers) w.join();
  return chunks;
}

// Runs fn(begin, end) over [0, n) in up to g_threads contiguous chunks of at least `grain` items.
template <typename Fn>
void ParallelFor(int64_t n, int64_t grain, Fn fn) {
  ParallelForChunks(n, grain, [&fn](int64_t, int64_t b, int64_t e) { fn(b, e); });
}

struct Inputs {
  std::vector<TF_Tensor*> t;
  ~Inputs() {
    for (TF_Tensor* x : t) TF_DeleteTensor(x);
  }
};

// Fetches input i as a float tensor; on failure sets the kernel's status and returns null.
TF_Tensor* FloatInput(TF_OpKernelContext* ctx, int i, Inputs* keep, TF_Status* s) {
  TF_Tensor* t = nullptr;
  TF_GetInput(ctx, i, &t, s);
  if (TF_GetCode(s) != TF_OK) {
    TF_OpKernelContext_Failure(ctx, s);
    return nullptr;
  }
  keep->t.push_back(t);
  if (TF_TensorType(t) != TF_FLOAT) {
    TF_SetStatus(s, TF_INVALID_ARGUMENT, "RefConv ops take float32 tensors only");
    TF_OpKernelContext_Failure(ctx, s);
    return nullptr;
  }
  return t;
}

// Fetches the first n inputs as float tensors into keep->t; false (with the kernel's status set) on failure.
bool FloatInputs(TF_OpKernelContext* ctx, int n, Inputs* keep, TF_Status* s) {
  for (int i = 0; i < n; ++i) {
    if (!FloatInput(ctx, i, keep, s)) return false;
  }
  return true;
}

std::vector<int64_t> Dims(const TF_Tensor* t) {
  std::vector<int64_t> d(TF_NumDims(t));
  for (size_t i = 0; i < d.size(); ++i) d[i] = TF_Dim(t, i);
  return d;
}

void Fail(TF_OpKernelContext* ctx, TF_Status* s, const char* msg) {
  TF_SetStatus(s, TF_INVALID_ARGUMENT, msg);
  TF_OpKernelContext_Failure(ctx, s);
}

// ---------------------------------------------------------------------------------------------
// RefconvSgdUpdate(param, buf, grad, lr) -> (new_param, new_buf), torch.optim.SGD's step for a
// parameter that already has a momentum buffer, in the operation order of @refconv/engine's SGD:
//   d = grad (+ param * weight_decay)
//   buf' = buf * momentum + (dampening == 0 ? d : d * (1 - dampening))
//   d = nesterov ? d + buf' * momentum : buf'
//   param' = param - d * lr
struct SgdAttrs {
  float momentum = 0, dampening = 0, weight_decay = 0;
  bool nesterov = false;
};

void* SgdCreate(TF_OpKernelConstruction* ctx) {
  auto* a = new SgdAttrs;
  TF_Status* s = TF_NewStatus();
  TF_OpKernelConstruction_GetAttrFloat(ctx, "momentum", &a->momentum, s);
  if (TF_GetCode(s) == TF_OK) TF_OpKernelConstruction_GetAttrFloat(ctx, "dampening", &a->dampening, s);
  if (TF_GetCode(s) == TF_OK) TF_OpKernelConstruction_GetAttrFloat(ctx, "weight_decay", &a->weight_decay, s);
  unsigned char nesterov = 0;
  if (TF_GetCode(s) == TF_OK) TF_OpKernelConstruction_GetAttrBool(ctx, "nesterov", &nesterov, s);
  a->nesterov = nesterov != 0;
  if (TF_GetCode(s) != TF_OK) TF_OpKernelConstruction_Failure(ctx, s);
  TF_DeleteStatus(s);
  return a;
}

void SgdDelete(void* kernel) { delete static_cast<SgdAttrs*>(kernel); }

void SgdCompute(void* kernel, TF_OpKernelContext* ctx) {
  const SgdAttrs a = *static_cast<SgdAttrs*>(kernel);
  TF_Status* s = TF_NewStatus();
  Inputs keep;
  if (!FloatInputs(ctx, 4, &keep, s)) {
    TF_DeleteStatus(s);
    return;
  }
  TF_Tensor *param = keep.t[0], *buf = keep.t[1], *grad = keep.t[2], *lr_t = keep.t[3];
  const int64_t n = TF_TensorElementCount(param);
  if (TF_TensorElementCount(buf) != n || TF_TensorElementCount(grad) != n || TF_TensorElementCount(lr_t) != 1) {
    Fail(ctx, s, "RefconvSgdUpdate: param, buf and grad must have the same size and lr must be a scalar");
    TF_DeleteStatus(s);
    return;
  }
  const std::vector<int64_t> dims = Dims(param);
  TF_Tensor* out_p = TF_AllocateOutput(ctx, 0, TF_FLOAT, dims.data(), dims.size(), n * sizeof(float), s);
  TF_Tensor* out_b = TF_GetCode(s) == TF_OK ? TF_AllocateOutput(ctx, 1, TF_FLOAT, dims.data(), dims.size(), n * sizeof(float), s) : nullptr;
  if (TF_GetCode(s) != TF_OK) {
    TF_OpKernelContext_Failure(ctx, s);
  } else {
    const float* p = static_cast<const float*>(TF_TensorData(param));
    const float* b = static_cast<const float*>(TF_TensorData(buf));
    const float* g = static_cast<const float*>(TF_TensorData(grad));
    const float lr = *static_cast<const float*>(TF_TensorData(lr_t));
    float* po = static_cast<float*>(TF_TensorData(out_p));
    float* bo = static_cast<float*>(TF_TensorData(out_b));
    const float m = a.momentum, wd = a.weight_decay, keep_g = 1.0f - a.dampening;
    const bool damp = a.dampening != 0.0f, decay = wd != 0.0f, nesterov = a.nesterov;
    ParallelFor(n, 1 << 16, [=](int64_t lo, int64_t hi) {
      for (int64_t i = lo; i < hi; ++i) {
        float d = g[i];
        if (decay) d = d + p[i] * wd;
        const float nb = b[i] * m + (damp ? d * keep_g : d);
        bo[i] = nb;
        const float step = nesterov ? d + nb * m : nb;
        po[i] = p[i] - step * lr;
      }
    });
  }
  TF_DeleteTensor(out_p);
  TF_DeleteTensor(out_b);
  TF_DeleteStatus(s);
}

// ---------------------------------------------------------------------------------------------
// RefconvMaxPoolGrad(input, dy) -> dx: the gradient of an NHWC max pool with windows
// ksize = [kh, kw], strides = [sh, sw], and `pads` = [top, left] positions outside the input
// (never selected). Each output's gradient goes to the first maximum of its window in row-major
// order, as TF's MaxPoolGrad does (tensorflow/core/kernels/maxpooling_op.cc updates the argmax
// only on a strictly greater value).
struct PoolAttrs {
  int64_t kh = 1, kw = 1, sh = 1, sw = 1, pt = 0, pl = 0;
};

bool GetInt2(TF_OpKernelConstruction* ctx, const char* name, int64_t* v0, int64_t* v1, TF_Status* s) {
  int64_t v[2] = {0, 0};
  TF_OpKernelConstruction_GetAttrInt64List(ctx, name, v, 2, s);
  *v0 = v[0];
  *v1 = v[1];
  return TF_GetCode(s) == TF_OK;
}

void* PoolCreate(TF_OpKernelConstruction* ctx) {
  auto* a = new PoolAttrs;
  TF_Status* s = TF_NewStatus();
  if (!(GetInt2(ctx, "ksize", &a->kh, &a->kw, s) && GetInt2(ctx, "strides", &a->sh, &a->sw, s) &&
        GetInt2(ctx, "pads", &a->pt, &a->pl, s))) {
    TF_OpKernelConstruction_Failure(ctx, s);
  }
  TF_DeleteStatus(s);
  return a;
}

void PoolDelete(void* kernel) { delete static_cast<PoolAttrs*>(kernel); }

// One image of RefconvMaxPoolGrad. Compiled for AVX2 and for the baseline ISA (GCC picks the
// clone at load time from the CPU): the channel loops are what vectorises.
__attribute__((target_clones("avx2", "default")))
void PoolGradImage(const PoolAttrs& a, const float* __restrict xi, const float* __restrict gi, float* __restrict di, int64_t H,
                   int64_t W, int64_t C, int64_t OH, int64_t OW, float* __restrict best, int32_t* __restrict arg) {
  std::memset(di, 0, H * W * C * sizeof(float));
  for (int64_t oh = 0; oh < OH; ++oh) {
    const int64_t h0 = oh * a.sh - a.pt, hs = std::max<int64_t>(h0, 0), he = std::min<int64_t>(h0 + a.kh, H);
    for (int64_t ow = 0; ow < OW; ++ow) {
      const int64_t w0 = ow * a.sw - a.pl, ws = std::max<int64_t>(w0, 0), we = std::min<int64_t>(w0 + a.kw, W);
      if (hs >= he || ws >= we) continue;  // a window entirely in the padding has no input
      const float* __restrict g = gi + (oh * OW + ow) * C;
      // Argmax over the window, channel-vectorised: the first maximum wins.
      const float* __restrict first = xi + (hs * W + ws) * C;
      for (int64_t c = 0; c < C; ++c) {
        best[c] = first[c];
        arg[c] = 0;
      }
      int32_t pos = 0;
      for (int64_t h = hs; h < he; ++h) {
        for (int64_t w = ws; w < we; ++w, ++pos) {
          if (pos == 0) continue;
          const float* __restrict v = xi + (h * W + w) * C;
          for (int64_t c = 0; c < C; ++c) {
            const bool gt = v[c] > best[c];
            best[c] = gt ? v[c] : best[c];
            arg[c] = gt ? pos : arg[c];
          }
        }
      }
      pos = 0;
      for (int64_t h = hs; h < he; ++h) {
        for (int64_t w = ws; w < we; ++w, ++pos) {
          float* __restrict d = di + (h * W + w) * C;
          for (int64_t c = 0; c < C; ++c) d[c] += arg[c] == pos ? g[c] : 0.0f;
        }
      }
    }
  }
}

void PoolCompute(void* kernel, TF_OpKernelContext* ctx) {
  const PoolAttrs a = *static_cast<PoolAttrs*>(kernel);
  TF_Status* s = TF_NewStatus();
  Inputs keep;
  if (!FloatInputs(ctx, 2, &keep, s)) {
    TF_DeleteStatus(s);
    return;
  }
  TF_Tensor *x = keep.t[0], *dy = keep.t[1];
  const std::vector<int64_t> xd = Dims(x), gd = Dims(dy);
  if (xd.size() != 4 || gd.size() != 4 || xd[0] != gd[0] || xd[3] != gd[3]) {
    Fail(ctx, s, "RefconvMaxPoolGrad: input and dy must be NHWC with the same batch and channels");
    TF_DeleteStatus(s);
    return;
  }
  const int64_t N = xd[0], H = xd[1], W = xd[2], C = xd[3], OH = gd[1], OW = gd[2];
  TF_Tensor* out = TF_AllocateOutput(ctx, 0, TF_FLOAT, xd.data(), 4, N * H * W * C * sizeof(float), s);
  if (TF_GetCode(s) != TF_OK) {
    TF_OpKernelContext_Failure(ctx, s);
  } else {
    const float* xp = static_cast<const float*>(TF_TensorData(x));
    const float* gp = static_cast<const float*>(TF_TensorData(dy));
    float* dx = static_cast<float*>(TF_TensorData(out));
    // Images are independent, so threads split the batch (windows of one image overlap).
    ParallelFor(N, 1, [=](int64_t n0, int64_t n1) {
      std::vector<float> best(C);
      std::vector<int32_t> arg(C);
      for (int64_t n = n0; n < n1; ++n) {
        PoolGradImage(a, xp + n * H * W * C, gp + n * OH * OW * C, dx + n * H * W * C, H, W, C, OH, OW, best.data(), arg.data());
      }
    });
  }
  TF_DeleteTensor(out);
  TF_DeleteStatus(s);
}

// ---------------------------------------------------------------------------------------------
// RefconvRefocusPerKernel(image [1, K, K, N], transform [M, M, N, 1]) -> out [1, K, K, N]:
//   out[y, x, c] = sum over (dy, dx) of image[y + dy - M/2, x + dx - M/2, c] * transform[dy, dx, c]
// with zero padding, i.e. tf.depthwiseConv2d(image, transform, 1, 'same') for an odd M <= K.
// RefconvRefocusPerKernelGrad(image [1, K, K, N], dy [1, K, K, N]; map_k = M) -> [M, M, N, 1]:
//   grad[dy, dx, c] = sum over (y, x) of image[y + dy - M/2, x + dx - M/2, c] * dy[y, x, c]
// the transform's gradient (TF's DepthwiseConv2dNativeBackpropFilter for the same conv).
// Threads split the channels; every loop runs over a contiguous channel range.
bool ImageDims(TF_OpKernelContext* ctx, TF_Tensor* t, const char* what, int64_t* k, int64_t* n, TF_Status* s) {
  const std::vector<int64_t> d = Dims(t);
  if (d.size() != 4 || d[0] != 1 || d[1] != d[2]) {
    Fail(ctx, s, (std::string("RefconvRefocusPerKernel: ") + what + " must be [1, K, K, N]").c_str());
    return false;
  }
  *k = d[1];
  *n = d[3];
  return true;
}

// Channel blocks small enough that a block's K*K image values, M*M transform values and K*K
// outputs stay in L1 while every (position, shift) pair is visited: each value is read from memory once.
constexpr int64_t kChannelBlock = 256;

// Both ops are sums over (output position, map shift) pairs of image[position + shift] times a
// second factor, vectorised over a block of channels:
//   forward  (grad = false): out[position] += image[position + shift] * transform[shift]
//   gradient (grad = true):  out[shift]    += image[position + shift] * dy[position]
// `outer` indexes the output (K x K positions or M x M shifts), `inner` the summed-over pairs.
// One body, instantiated per op (kGrad is a compile-time constant, so the index selects fold
// away) and inlined into each op's per-ISA clones.
template <bool kGrad>
__attribute__((always_inline)) inline void RefocusPerKernelBody(const float* __restrict img, const float* __restrict factor, float* __restrict out, int64_t K,
                                 int64_t M, int64_t N, int64_t c0, int64_t c1) {
  const int64_t p = M / 2, outer = kGrad ? M : K, inner = kGrad ? K : M;
  for (int64_t b0 = c0; b0 < c1; b0 += kChannelBlock) {
    const int64_t b1 = std::min(c1, b0 + kChannelBlock);
    for (int64_t a = 0; a < outer; ++a) {
      for (int64_t b = 0; b < outer; ++b) {
        float* __restrict o = out + (a * outer + b) * N;
        for (int64_t c = b0; c < b1; ++c) o[c] = 0.0f;
        for (int64_t i = 0; i < inner; ++i) {
          for (int64_t j = 0; j < inner; ++j) {
            const int64_t y = kGrad ? i : a, x = kGrad ? j : b, dy = kGrad ? a : i, dx = kGrad ? b : j;
            const int64_t sy = y + dy - p, sx = x + dx - p;
            if (sy < 0 || sy >= K || sx < 0 || sx >= K) continue;
            const float* __restrict v = img + (sy * K + sx) * N;
            const float* __restrict w = factor + (kGrad ? y * K + x : dy * M + dx) * N;
            for (int64_t c = b0; c < b1; ++c) o[c] += v[c] * w[c];
          }
        }
      }
    }
  }
}

__attribute__((target_clones("avx512f", "avx2", "default")))
void RefocusPerKernelRange(const float* __restrict img, const float* __restrict t, float* __restrict out, int64_t K, int64_t M, int64_t N, int64_t c0, int64_t c1) {
  RefocusPerKernelBody<false>(img, t, out, K, M, N, c0, c1);
}

__attribute__((target_clones("avx512f", "avx2", "default")))
void RefocusPerKernelGradRange(const float* __restrict img, const float* __restrict dy, float* __restrict out, int64_t K, int64_t M, int64_t N, int64_t c0, int64_t c1) {
  RefocusPerKernelBody<true>(img, dy, out, K, M, N, c0, c1);
}

// The two ops' common tail: allocates output 0 with `dims` and runs `range(input0, input1, out,
// c0, c1)` over channel ranges [c0, c1) of the N channels, split across threads.
template <typename Range>
void RefocusOutput(TF_OpKernelContext* ctx, TF_Status* s, const Inputs& keep, std::array<int64_t, 4> dims, int64_t n, Range range) {
  TF_Tensor* out = TF_AllocateOutput(ctx, 0, TF_FLOAT, dims.data(), 4, dims[0] * dims[1] * dims[2] * dims[3] * sizeof(float), s);
  if (TF_GetCode(s) != TF_OK) {
    TF_OpKernelContext_Failure(ctx, s);
  } else {
    const float* a = static_cast<const float*>(TF_TensorData(keep.t[0]));
    const float* b = static_cast<const float*>(TF_TensorData(keep.t[1]));
    float* o = static_cast<float*>(TF_TensorData(out));
    ParallelFor(n, 1 << 12, [=](int64_t c0, int64_t c1) { range(a, b, o, c0, c1); });
  }
  TF_DeleteTensor(out);
}

void* NoAttrsCreate(TF_OpKernelConstruction*) { return nullptr; }
void NoAttrsDelete(void*) {}

void RefocusCompute(void*, TF_OpKernelContext* ctx) {
  TF_Status* s = TF_NewStatus();
  Inputs keep;
  int64_t K = 0, N = 0;
  if (FloatInputs(ctx, 2, &keep, s) && ImageDims(ctx, keep.t[0], "image", &K, &N, s)) {
    const std::vector<int64_t> td = Dims(keep.t[1]);
    const int64_t M = td.size() == 4 ? td[0] : 0;
    if (td.size() != 4 || td[1] != M || td[2] != N || td[3] != 1 || M % 2 == 0 || M > K) {
      Fail(ctx, s, "RefconvRefocusPerKernel: transform must be [M, M, N, 1] with an odd M no larger than K");
    } else {
      RefocusOutput(ctx, s, keep, {1, K, K, N}, N, [=](const float* img, const float* t, float* o, int64_t c0, int64_t c1) {
        RefocusPerKernelRange(img, t, o, K, M, N, c0, c1);
      });
    }
  }
  TF_DeleteStatus(s);
}

struct MapAttrs {
  int64_t m = 3;
};

void* RefocusGradCreate(TF_OpKernelConstruction* ctx) {
  auto* a = new MapAttrs;
  TF_Status* s = TF_NewStatus();
  int64_t unused = 0;
  if (!GetInt2(ctx, "map_k", &a->m, &unused, s)) TF_OpKernelConstruction_Failure(ctx, s);
  TF_DeleteStatus(s);
  return a;
}

void RefocusGradDelete(void* kernel) { delete static_cast<MapAttrs*>(kernel); }

void RefocusGradCompute(void* kernel, TF_OpKernelContext* ctx) {
  const int64_t M = static_cast<MapAttrs*>(kernel)->m;
  TF_Status* s = TF_NewStatus();
  Inputs keep;
  int64_t K = 0, N = 0, K2 = 0, N2 = 0;
  if (FloatInputs(ctx, 2, &keep, s) && ImageDims(ctx, keep.t[0], "image", &K, &N, s) && ImageDims(ctx, keep.t[1], "dy", &K2, &N2, s)) {
    if (K2 != K || N2 != N || M % 2 == 0 || M < 1 || M > K) {
      Fail(ctx, s, "RefconvRefocusPerKernelGrad: dy must have the image's shape and map_k must be odd and no larger than K");
    } else {
      RefocusOutput(ctx, s, keep, {M, M, N, 1}, N, [=](const float* img, const float* g, float* o, int64_t c0, int64_t c1) {
        RefocusPerKernelGradRange(img, g, o, K, M, N, c0, c1);
      });
    }
  }
  TF_DeleteStatus(s);
}


// ---------------------------------------------------------------------------------------------
// RefconvBatchNormTraining(x [..., C], scale [C], offset [C]; epsilon) -> (y, mean, variance, inv_std):
// training-mode batch norm over all axes but the last, as tfjs' BatchNormalization layer defines
// it: y = (x - mean) * inv_std * scale + offset with the batch mean, the biased batch variance and
// inv_std = 1 / sqrt(variance + epsilon). Two passes over x (statistics, then y): the traffic of
// one elementwise op. TF's FusedBatchNormV3 took 2.5x an elementwise add over the same tensor on
// an AMD EPYC (AVX2, oneDNN) and was 23 % of a MobileNetV2 training step's kernel time there.
// RefconvBatchNormTrainingGrad(dy, x, scale, offset, mean, inv_std) -> (dx, dscale, doffset): its
// gradient, two passes over dy and x (sums, then dx). Both take `activation` (see BnAttrs).
// Sums are taken in float over blocks of rows, then in double across blocks and threads; the
// statistics pass sums x - x[0] (the first row) so that a large mean does not cancel the variance.
constexpr int64_t kRowBlock = 64;

// The activation fused after the normalisation: 0 none, 1 ReLU, 2 ReLU6.
template <int kAct>
inline float Activate(float v) {
  return kAct == 0 ? v : kAct == 1 ? std::max(v, 0.0f) : std::min(std::max(v, 0.0f), 6.0f);
}

// Whether the gradient passes the activation at pre-activation v (TF's ReluGrad / Relu6Grad:
// v > 0, and v < 6 for ReLU6).
template <int kAct>
inline bool Passes(float v) {
  return kAct == 0 ? true : kAct == 1 ? v > 0.0f : (v > 0.0f && v < 6.0f);
}

// Per-channel sums over rows [r0, r1), into double s1, s2 (f1, f2: C-float scratch):
//   statistics (kGrad false): of a = x - shift and of a * a (shift: the first row);
//   gradient (kGrad true): of g and of g * (x - mean), g = dy masked by the activation at the
//   forward's pre-activation (x - mean) * k + offset, recomputed with the forward's float ops.
template <bool kGrad, int kAct>
__attribute__((always_inline)) inline void BnSumsBody(const float* __restrict x, const float* __restrict dy, const float* __restrict shift,
                                                      const float* __restrict k, const float* __restrict offset, int64_t C, int64_t r0, int64_t r1,
                                                      double* __restrict s1, double* __restrict s2, float* __restrict f1, float* __restrict f2) {
  for (int64_t rb = r0; rb < r1; rb += kRowBlock) {
    const int64_t re = std::min(r1, rb + kRowBlock);
    for (int64_t c = 0; c < C; ++c) f1[c] = f2[c] = 0.0f;
    for (int64_t r = rb; r < re; ++r) {
      const float* __restrict xr = x + r * C;
      const float* __restrict gr = kGrad ? dy + r * C : xr;
      for (int64_t c = 0; c < C; ++c) {
        const float a = xr[c] - shift[c];
        const float gv = gr[c];  // loaded unconditionally, so that the mask below is a vector select
        const float g = kGrad && kAct != 0 ? (Passes<kAct>(a * k[c] + offset[c]) ? gv : 0.0f) : gv;
        f1[c] += kGrad ? g : a;
        f2[c] += kGrad ? g * a : a * a;
      }
    }
    for (int64_t c = 0; c < C; ++c) {
      s1[c] += f1[c];
      s2[c] += f2[c];
    }
  }
}

// y = act((x - mean) * k + offset) per channel over rows [r0, r1). x is centred before the
// scaling (as tfjs' ops compute it): x * k + (offset - mean * k) loses the digits of a large mean.
template <int kAct>
__attribute__((always_inline)) inline void BnNormalizeBody(const float* __restrict x, const float* __restrict mean, const float* __restrict k,
                                                           const float* __restrict offset, float* __restrict y, int64_t C, int64_t r0, int64_t r1) {
  for (int64_t r = r0; r < r1; ++r) {
    const float* __restrict xr = x + r * C;
    float* __restrict yr = y + r * C;
    for (int64_t c = 0; c < C; ++c) yr[c] = Activate<kAct>((xr[c] - mean[c]) * k[c] + offset[c]);
  }
}

// dx = g * k1 + (x - mean) * k2 + k3 per channel over rows [r0, r1), g = dy masked as in BnSumsBody.
template <int kAct>
__attribute__((always_inline)) inline void BnGradInputBody(const float* __restrict dy, const float* __restrict x, const float* __restrict mean,
                                                           const float* __restrict k, const float* __restrict offset, const float* __restrict k1,
                                                           const float* __restrict k2, const float* __restrict k3, float* __restrict dx, int64_t C,
                                                           int64_t r0, int64_t r1) {
  for (int64_t r = r0; r < r1; ++r) {
    const float* __restrict gr = dy + r * C;
    const float* __restrict xr = x + r * C;
    float* __restrict o = dx + r * C;
    for (int64_t c = 0; c < C; ++c) {
      const float a = xr[c] - mean[c];
      const float gv = gr[c];  // loaded unconditionally, so that the mask below is a vector select
      const float g = kAct != 0 ? (Passes<kAct>(a * k[c] + offset[c]) ? gv : 0.0f) : gv;
      o[c] = g * k1[c] + a * k2[c] + k3[c];
    }
  }
}

// The per-ISA clones; `act` selects the instantiation.
__attribute__((target_clones("avx512f", "avx2", "default")))
void BnStatsRange(const float* x, int64_t C, int64_t r0, int64_t r1, double* s1, double* s2, float* f1, float* f2) {
  BnSumsBody<false, 0>(x, nullptr, x, nullptr, nullptr, C, r0, r1, s1, s2, f1, f2);
}

__attribute__((target_clones("avx512f", "avx2", "default")))
void BnGradSumsRange(int64_t act, const float* dy, const float* x, const float* mean, const float* k, const float* offset, int64_t C, int64_t r0,
                     int64_t r1, double* s1, double* s2, float* f1, float* f2) {
  if (act == 1) BnSumsBody<true, 1>(x, dy, mean, k, offset, C, r0, r1, s1, s2, f1, f2);
  else if (act == 2) BnSumsBody<true, 2>(x, dy, mean, k, offset, C, r0, r1, s1, s2, f1, f2);
  else BnSumsBody<true, 0>(x, dy, mean, k, offset, C, r0, r1, s1, s2, f1, f2);
}

__attribute__((target_clones("avx512f", "avx2", "default")))
void BnNormalizeRange(int64_t act, const float* x, const float* mean, const float* k, const float* offset, float* y, int64_t C, int64_t r0, int64_t r1) {
  if (act == 1) BnNormalizeBody<1>(x, mean, k, offset, y, C, r0, r1);
  else if (act == 2) BnNormalizeBody<2>(x, mean, k, offset, y, C, r0, r1);
  else BnNormalizeBody<0>(x, mean, k, offset, y, C, r0, r1);
}

__attribute__((target_clones("avx512f", "avx2", "default")))
void BnGradInputRange(int64_t act, const float* dy, const float* x, const float* mean, const float* k, const float* offset, const float* k1,
                      const float* k2, const float* k3, float* dx, int64_t C, int64_t r0, int64_t r1) {
  if (act == 1) BnGradInputBody<1>(dy, x, mean, k, offset, k1, k2, k3, dx, C, r0, r1);
  else if (act == 2) BnGradInputBody<2>(dy, x, mean, k, offset, k1, k2, k3, dx, C, r0, r1);
  else BnGradInputBody<0>(dy, x, mean, k, offset, k1, k2, k3, dx, C, r0, r1);
}

// Per-channel sums of the rows of one or two [rows, C] arrays, split across threads by rows:
// `range(r0, r1, s1, s2, f1, f2)` adds its rows into the chunk's own s1, s2; returns the totals.
template <typename Range>
void BnChannelSums(int64_t rows, int64_t C, Range range, std::vector<double>* t1, std::vector<double>* t2) {
  std::vector<double> s1(static_cast<size_t>(g_threads) * C, 0.0), s2(static_cast<size_t>(g_threads) * C, 0.0);
  std::vector<float> scratch(static_cast<size_t>(g_threads) * 2 * C);
  const int64_t chunks = ParallelForChunks(rows, 4 * kRowBlock, [&](int64_t chunk, int64_t r0, int64_t r1) {
    range(r0, r1, &s1[chunk * C], &s2[chunk * C], &scratch[2 * chunk * C], &scratch[(2 * chunk + 1) * C]);
  });
  t1->assign(C, 0.0);
  t2->assign(C, 0.0);
  for (int64_t k = 0; k < chunks; ++k) {
    for (int64_t c = 0; c < C; ++c) {
      (*t1)[c] += s1[k * C + c];
      (*t2)[c] += s2[k * C + c];
    }
  }
}

// activation: 0 none, 1 ReLU, 2 ReLU6, applied to the normalised output (the forward) and its mask
// to the incoming gradient (the gradient), so that a BN layer and the activation after it are one
// op each way: TF's Relu6 and Relu6Grad are a full pass over the activations each.
struct BnAttrs {
  float epsilon = 1e-3f;
  int64_t activation = 0;
};

void* BnCreate(TF_OpKernelConstruction* ctx) {
  auto* a = new BnAttrs;
  TF_Status* s = TF_NewStatus();
  TF_OpKernelConstruction_GetAttrFloat(ctx, "epsilon", &a->epsilon, s);
  if (TF_GetCode(s) == TF_OK) TF_OpKernelConstruction_GetAttrInt64(ctx, "activation", &a->activation, s);
  if (TF_GetCode(s) == TF_OK && (a->activation < 0 || a->activation > 2)) TF_SetStatus(s, TF_INVALID_ARGUMENT, "activation must be 0 (none), 1 (ReLU) or 2 (ReLU6)");
  if (TF_GetCode(s) != TF_OK) TF_OpKernelConstruction_Failure(ctx, s);
  TF_DeleteStatus(s);
  return a;
}

void BnDelete(void* kernel) { delete static_cast<BnAttrs*>(kernel); }

// Checks that input `first` has rank >= 2 and the inputs from `vectors` on are [C] vectors; sets rows and C.
bool BnShapes(TF_OpKernelContext* ctx, const Inputs& keep, size_t first, size_t vectors, const char* op, int64_t* rows, int64_t* C, TF_Status* s) {
  const std::vector<int64_t> d = Dims(keep.t[first]);
  if (d.size() < 2 || d.back() < 1) {
    Fail(ctx, s, (std::string(op) + ": x must have rank >= 2 and at least one channel").c_str());
    return false;
  }
  *C = d.back();
  *rows = TF_TensorElementCount(keep.t[first]) / *C;
  for (size_t i = 0; i < keep.t.size(); ++i) {
    const bool vector = i >= vectors;
    if (vector ? (TF_NumDims(keep.t[i]) != 1 || TF_Dim(keep.t[i], 0) != *C) : Dims(keep.t[i]) != d) {
      Fail(ctx, s, (std::string(op) + ": input " + std::to_string(i) + (vector ? " must be a vector of the channel count" : " must have x's shape")).c_str());
      return false;
    }
  }
  if (*rows < 1) {
    Fail(ctx, s, (std::string(op) + ": x is empty").c_str());
    return false;
  }
  return true;
}

// Allocates `count` outputs from `first` on: output first + i has dims[i].
bool AllocateOutputs(TF_OpKernelContext* ctx, const std::vector<std::vector<int64_t>>& dims, std::vector<float*>* data, std::vector<TF_Tensor*>* outs,
                     TF_Status* s) {
  for (size_t i = 0; i < dims.size(); ++i) {
    int64_t n = 1;
    for (int64_t v : dims[i]) n *= v;
    TF_Tensor* t = TF_AllocateOutput(ctx, static_cast<int>(i), TF_FLOAT, dims[i].data(), static_cast<int>(dims[i].size()), n * sizeof(float), s);
    if (TF_GetCode(s) != TF_OK) {
      TF_OpKernelContext_Failure(ctx, s);
      return false;
    }
    outs->push_back(t);
    data->push_back(static_cast<float*>(TF_TensorData(t)));
  }
  return true;
}

// The per-channel factor k = inv_std * scale, in float, so that the gradient recomputes the
// forward's pre-activation bit for bit from the inv_std output.
void BnFactor(const float* inv, const float* scale, int64_t C, std::vector<float>* k) {
  k->resize(C);
  for (int64_t c = 0; c < C; ++c) (*k)[c] = inv[c] * scale[c];
}

// The two BN kernels' common frame: fetches `inputs` float inputs, checks them (BnShapes: the
// activations at `first`, [C] vectors from `vectors` on), allocates output 0 with the activations'
// shape and `vector_outputs` [C] outputs after it, and runs body(inputs, outputs, rows, C).
template <typename Body>
void BnKernel(TF_OpKernelContext* ctx, int inputs, size_t first, size_t vectors, int vector_outputs, const char* op, Body body) {
  TF_Status* s = TF_NewStatus();
  Inputs keep;
  std::vector<TF_Tensor*> outs;
  std::vector<float*> o;
  int64_t rows = 0, C = 0;
  if (FloatInputs(ctx, inputs, &keep, s) && BnShapes(ctx, keep, first, vectors, op, &rows, &C, s)) {
    std::vector<std::vector<int64_t>> dims(1 + vector_outputs, std::vector<int64_t>{C});
    dims[0] = Dims(keep.t[first]);
    std::vector<const float*> in;
    for (TF_Tensor* t : keep.t) in.push_back(static_cast<const float*>(TF_TensorData(t)));
    if (AllocateOutputs(ctx, dims, &o, &outs, s)) body(in, o, rows, C);
  }
  for (TF_Tensor* t : outs) TF_DeleteTensor(t);
  TF_DeleteStatus(s);
}

void BnCompute(void* kernel, TF_OpKernelContext* ctx) {
  const BnAttrs attrs = *static_cast<BnAttrs*>(kernel);
  BnKernel(ctx, 3, 0, 1, 3, "RefconvBatchNormTraining", [&](const std::vector<const float*>& in, const std::vector<float*>& o, int64_t rows, int64_t C) {
    const float *x = in[0], *scale = in[1], *offset = in[2];
    std::vector<double> s1, s2;
    BnChannelSums(rows, C, [=](int64_t r0, int64_t r1, double* a, double* b, float* f1, float* f2) { BnStatsRange(x, C, r0, r1, a, b, f1, f2); },
                  &s1, &s2);
    for (int64_t c = 0; c < C; ++c) {
      const double d = s1[c] / rows;  // mean - x[0]
      const double var = std::max(0.0, s2[c] / rows - d * d);
      o[1][c] = static_cast<float>(x[c] + d);
      o[2][c] = static_cast<float>(var);
      o[3][c] = static_cast<float>(1.0 / std::sqrt(var + attrs.epsilon));
    }
    std::vector<float> k;
    BnFactor(o[3], scale, C, &k);
    float *y = o[0], *m = o[1];
    const float* kp = k.data();
    const int64_t act = attrs.activation;
    ParallelFor(rows, 4 * kRowBlock, [=](int64_t r0, int64_t r1) { BnNormalizeRange(act, x, m, kp, offset, y, C, r0, r1); });
  });
}

void BnGradCompute(void* kernel, TF_OpKernelContext* ctx) {
  const int64_t act = static_cast<BnAttrs*>(kernel)->activation;
  BnKernel(ctx, 6, 1, 2, 2, "RefconvBatchNormTrainingGrad", [&](const std::vector<const float*>& in, const std::vector<float*>& o, int64_t rows, int64_t C) {
    const float *dy = in[0], *x = in[1], *scale = in[2], *offset = in[3], *mean = in[4], *inv = in[5];
    std::vector<float> k;
    BnFactor(inv, scale, C, &k);
    const float* kp = k.data();
    std::vector<double> sdy, sdyx;
    BnChannelSums(rows, C, [=](int64_t r0, int64_t r1, double* a, double* b, float* f1, float* f2) {
      BnGradSumsRange(act, dy, x, mean, kp, offset, C, r0, r1, a, b, f1, f2);
    }, &sdy, &sdyx);
    // with g = dy masked by the activation:
    // dx = scale * inv * (g - mean(g) - (x - mean) * inv^2 * mean(g * (x - mean))), centred as the forward
    std::vector<float> k1(C), k2(C), k3(C);
    for (int64_t c = 0; c < C; ++c) {
      const double a = static_cast<double>(scale[c]) * inv[c];
      const double b = -a * inv[c] * inv[c] * (sdyx[c] / rows);
      k1[c] = static_cast<float>(a);
      k2[c] = static_cast<float>(b);
      k3[c] = static_cast<float>(-a * (sdy[c] / rows));
      o[1][c] = static_cast<float>(sdyx[c] * inv[c]);
      o[2][c] = static_cast<float>(sdy[c]);
    }
    float* dx = o[0];
    const float *p1 = k1.data(), *p2 = k2.data(), *p3 = k3.data();
    ParallelFor(rows, 4 * kRowBlock, [=](int64_t r0, int64_t r1) { BnGradInputRange(act, dy, x, mean, kp, offset, p1, p2, p3, dx, C, r0, r1); });
  });
}

// ---------------------------------------------------------------------------------------------
bool RegisterOp(const char* name, const std::vector<const char*>& inputs, const std::vector<const char*>& outputs,
                const std::vector<const char*>& attrs, TF_Status* s) {
  TF_OpDefinitionBuilder* b = TF_NewOpDefinitionBuilder(name);
  for (const char* i : inputs) TF_OpDefinitionBuilderAddInput(b, i);
  for (const char* o : outputs) TF_OpDefinitionBuilderAddOutput(b, o);
  for (const char* a : attrs) TF_OpDefinitionBuilderAddAttr(b, a);
  TF_RegisterOpDefinition(b, s);  // takes ownership of b
  return TF_GetCode(s) == TF_OK;
}

bool RegisterKernel(const char* name, void* (*create)(TF_OpKernelConstruction*), void (*compute)(void*, TF_OpKernelContext*),
                    void (*del)(void*), TF_Status* s) {
  TF_KernelBuilder* k = TF_NewKernelBuilder(name, "CPU", create, compute, del);
  TF_RegisterKernelBuilder(name, k, s);  // takes ownership of k
  return TF_GetCode(s) == TF_OK;
}

std::string g_error;

bool RegisterAll() {
  static bool done = false;
  if (done) return true;
  TF_Status* s = TF_NewStatus();
  bool ok = RegisterOp("RefconvSgdUpdate", {"param: float", "buf: float", "grad: float", "lr: float"},
                       {"new_param: float", "new_buf: float"},
                       {"momentum: float", "dampening: float = 0.0", "weight_decay: float = 0.0", "nesterov: bool = false"}, s) &&
            RegisterKernel("RefconvSgdUpdate", SgdCreate, SgdCompute, SgdDelete, s) &&
            RegisterOp("RefconvMaxPoolGrad", {"input: float", "dy: float"}, {"dx: float"},
                       {"ksize: list(int) >= 2", "strides: list(int) >= 2", "pads: list(int) >= 2"}, s) &&
            RegisterKernel("RefconvMaxPoolGrad", PoolCreate, PoolCompute, PoolDelete, s) &&
            RegisterOp("RefconvRefocusPerKernel", {"image: float", "transform: float"}, {"out: float"}, {}, s) &&
            RegisterKernel("RefconvRefocusPerKernel", NoAttrsCreate, RefocusCompute, NoAttrsDelete, s) &&
            RegisterOp("RefconvRefocusPerKernelGrad", {"image: float", "dy: float"}, {"grad: float"}, {"map_k: list(int) >= 1"}, s) &&
            RegisterKernel("RefconvRefocusPerKernelGrad", RefocusGradCreate, RefocusGradCompute, RefocusGradDelete, s) &&
            RegisterOp("RefconvBatchNormTraining", {"x: float", "scale: float", "offset: float"},
                       {"y: float", "mean: float", "variance: float", "inv_std: float"}, {"epsilon: float = 0.001", "activation: int = 0"}, s) &&
            RegisterKernel("RefconvBatchNormTraining", BnCreate, BnCompute, BnDelete, s) &&
            RegisterOp("RefconvBatchNormTrainingGrad", {"dy: float", "x: float", "scale: float", "offset: float", "mean: float", "inv_std: float"},
                       {"dx: float", "dscale: float", "doffset: float"}, {"epsilon: float = 0.001", "activation: int = 0"}, s) &&
            RegisterKernel("RefconvBatchNormTrainingGrad", BnCreate, BnGradCompute, BnDelete, s);
  if (!ok) g_error = TF_Message(s);
  TF_DeleteStatus(s);
  done = ok;
  return ok;
}

napi_value Throw(napi_env env, const char* msg) {
  napi_throw_error(env, nullptr, msg);
  return nullptr;
}

// register(): registers the ops (once) and returns their names.
napi_value JsRegister(napi_env env, napi_callback_info) {
  if (!RegisterAll()) return Throw(env, ("RefConv ops: registration failed: " + g_error).c_str());
  napi_value arr;
  napi_create_array(env, &arr);
  const char* names[] = {"RefconvSgdUpdate", "RefconvMaxPoolGrad", "RefconvRefocusPerKernel", "RefconvRefocusPerKernelGrad",
                         "RefconvBatchNormTraining", "RefconvBatchNormTrainingGrad"};
  for (uint32_t i = 0; i < 6; ++i) {
    napi_value v;
    napi_create_string_utf8(env, names[i], NAPI_AUTO_LENGTH, &v);
    napi_set_element(env, arr, i, v);
  }
  return arr;
}

// setThreads(n): how many threads the kernels split large tensors over (default: the cores).
napi_value JsSetThreads(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  int32_t n = 0;
  if (argc < 1 || napi_get_value_int32(env, argv[0], &n) != napi_ok || n < 1) return Throw(env, "setThreads: expected a positive integer");
  g_threads = n;
  return nullptr;
}

napi_value Init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"register", nullptr, JsRegister, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"setThreads", nullptr, JsSetThreads, nullptr, nullptr, nullptr, napi_default, nullptr},
  };
  napi_define_properties(env, exports, 2, props);
  return exports;
}

}  // namespace

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
