"""Winograd F(4x4, 3x3) convolution for CPUs: a 3x3 'same' convolution in a quarter of the multiply-adds.

Why: once compiled, synthesis on a CPU is bound by its 3x3 convolutions, which oneDNN already runs at the
CPU's peak, so only fewer multiply-adds make it faster. Winograd's algorithm (Lavin & Gray, 2016) computes each
4x4 output tile from a 6x6 input tile with 36 multiplications per channel pair instead of 144: the input tiles and
the weights are transformed (B^T d B, G g G^T), multiplied position by position (36 matrix products, done as 1x1
convolutions so that oneDNN runs them, with weights that torch.compile folds and prepacks), and transformed back
(A^T m A). Its rounding error is a few 1e-6 relative per convolution in float32. StyleGAN's upscaling
convolutions (nearest 2x, then 3x3) are the same thing with four output phases (``upscale_conv3x3``).

The transforms are memory-bound passes that inductor compiles poorly (36 strided outputs per tile), so they are
a small C kernel here, built once per machine with the system C compiler (the one inductor needs anyway) into
ganedit's cache folder, and exposed as custom ops that torch.compile calls as they are. Without a compiler,
``prepare()`` returns False and convolutions stay direct. ``suits`` says where Winograd is used: where it won.
"""

import ctypes
import hashlib
import logging
import os
import shutil
import subprocess
import tempfile
import threading

import torch
import torch.nn.functional as F

from . import memory

# Where Winograd beat oneDNN, measured compiled on a 2-core AVX-512 CPU: the input's least channels and pixels,
# for 3x3 convolutions and for upscaling ones (which otherwise are transposed convolutions). With 64 channels it
# won once malloc kept freed memory (Car-512 237 -> 223 ms); with 32 it lost (FFHQ-1024 156 -> 168 ms).
SMALLEST = {"conv": (64, 16 * 16), "upscale": (64, 32 * 32)}
# ... and its most channels x pixels: beyond, the transformed input (2.25x as large) is a fresh allocation of
# tens of MB that the system hands over page by page, zeroed, on every call, and that costs more than it saves;
# unless malloc keeps freed memory (ganedit.networks.memory), when there is no limit.
LARGEST = 4 * 2**20
log = logging.getLogger("ganedit")

# Lavin & Gray's F(4x4, 3x3) matrices (interpolation points 0, +-1, +-2); B^T and A^T are in the C source.
WEIGHT_TRANSFORM = [[1 / 4, 0, 0], [-1 / 6, -1 / 6, -1 / 6], [-1 / 6, 1 / 6, -1 / 6],
                    [1 / 24, 1 / 12, 1 / 6], [1 / 24, -1 / 12, 1 / 6], [0, 0, 1]]

SOURCE = r"""
/* Winograd F(4x4, 3x3) tile transforms on channels-last float32 maps (ganedit.networks.winograd). */
#define CB 64  /* channels per step: a tile's 36 rows of CB floats stay in L1 */
static const float ZEROS[CB];

static inline void bt(const float *const in[6], float *const out[6], int nc) {  /* out = B^T in */
    const float *d0 = in[0], *d1 = in[1], *d2 = in[2], *d3 = in[3], *d4 = in[4], *d5 = in[5];
    float *o0 = out[0], *o1 = out[1], *o2 = out[2], *o3 = out[3], *o4 = out[4], *o5 = out[5];
    #pragma omp simd
    for (int c = 0; c < nc; c++) {
        float a = d4[c] - 4 * d2[c], b = d3[c] - 4 * d1[c], e = d4[c] - d2[c], f = 2 * (d3[c] - d1[c]);
        o0[c] = 4 * d0[c] - 5 * d2[c] + d4[c];
        o1[c] = a + b;
        o2[c] = a - b;
        o3[c] = e + f;
        o4[c] = e - f;
        o5[c] = 4 * d1[c] - 5 * d3[c] + d5[c];
    }
}

static inline void at(const float *const in[6], float *const out[4], int nc) {  /* out = A^T in */
    const float *m0 = in[0], *m1 = in[1], *m2 = in[2], *m3 = in[3], *m4 = in[4], *m5 = in[5];
    float *o0 = out[0], *o1 = out[1], *o2 = out[2], *o3 = out[3];
    #pragma omp simd
    for (int c = 0; c < nc; c++) {
        float a = m1[c] + m2[c], b = m1[c] - m2[c], p = m3[c] + m4[c], q = m3[c] - m4[c];
        o0[c] = m0[c] + a + p;
        o1[c] = b + 2 * q;
        o2[c] = a + 4 * p;
        o3[c] = b + 8 * q + m5[c];
    }
}

/* x [N, H, W, C] -> v [36, N, H/4, W/4, C]: v[6i+j] of a tile = (B^T d B)[i][j], d its 6x6 zero-padded input. */
void winograd_input(const float *x, float *v, long N, long H, long W, long C, int threads) {
    long th = H / 4, tw = W / 4, tiles = N * th * tw;
    #pragma omp parallel for num_threads(threads)
    for (long t = 0; t < tiles; t++) {
        long n = t / (th * tw), ti = t / tw % th, tj = t % tw;
        float tmp[6][6][CB];
        for (long c0 = 0; c0 < C; c0 += CB) {
            int nc = C - c0 < CB ? (int)(C - c0) : CB;
            for (int b = 0; b < 6; b++) {
                const float *in[6];
                float *out[6];
                long col = 4 * tj - 1 + b;
                for (int a = 0; a < 6; a++) {
                    long row = 4 * ti - 1 + a;
                    int inside = row >= 0 && row < H && col >= 0 && col < W;
                    in[a] = inside ? x + ((n * H + row) * W + col) * C + c0 : ZEROS;
                    out[a] = tmp[a][b];
                }
                bt(in, out, nc);
            }
            for (int i = 0; i < 6; i++) {
                const float *in[6];
                float *out[6];
                for (int j = 0; j < 6; j++) {
                    in[j] = tmp[i][j];
                    out[j] = v + ((6 * i + j) * tiles + t) * C + c0;
                }
                bt(in, out, nc);
            }
        }
    }
}

/* m: 36 maps [N, H/4, W/4, up*up*O] -> y [N, up*H, up*W, O]. The channels of m are up*up phases of O (phase
   p*up+q first): each 4x4 tile of a phase, A^T m A, goes to rows up*r+p and columns up*c+q. */
void winograd_output(const float *const *m, float *y, long N, long th, long tw, long O, int up, int threads) {
    long H = up * 4 * th, W = up * 4 * tw, tiles = N * th * tw, phases = (long)up * up;
    #pragma omp parallel for num_threads(threads)
    for (long t = 0; t < tiles; t++) {
        long n = t / (th * tw), ti = t / tw % th, tj = t % tw;
        float tmp[4][6][CB];
        for (long ph = 0; ph < phases; ph++) {
            long p = ph / up, q = ph % up;
            for (long c0 = 0; c0 < O; c0 += CB) {
                int nc = O - c0 < CB ? (int)(O - c0) : CB;
                for (int b = 0; b < 6; b++) {
                    const float *in[6];
                    float *out[4];
                    for (int a = 0; a < 6; a++) in[a] = m[6 * a + b] + (t * phases + ph) * O + c0;
                    for (int i = 0; i < 4; i++) out[i] = tmp[i][b];
                    at(in, out, nc);
                }
                for (int i = 0; i < 4; i++) {
                    const float *in[6];
                    float *out[4];
                    long row = up * (4 * ti + i) + p;
                    for (int b = 0; b < 6; b++) in[b] = tmp[i][b];
                    for (int j = 0; j < 4; j++) out[j] = y + ((n * H + row) * W + up * (4 * tj + j) + q) * O + c0;
                    at(in, out, nc);
                }
            }
        }
    }
}
"""

_ARCH_FLAGS = {"AVX512": ["-march=x86-64-v4", "-mprefer-vector-width=512"], "AVX2": ["-march=x86-64-v3"]}
_library = None
_lock = threading.Lock()
ENABLED = False  # True once prepare() built the kernel; read while tracing, so a plain bool


def prepare():
    """Build (or find in the cache) the transform kernel; True when Winograd convolutions can be used."""
    global _library, ENABLED
    with _lock:
        if _library is None:
            _library = _load() or False
        ENABLED = bool(_library)
    return ENABLED


def _load():
    from ..files import cache_dir

    flags = ["-O3", "-shared", "-fPIC", "-fopenmp", *_ARCH_FLAGS.get(torch.backends.cpu.get_cpu_capability(), [])]
    digest = hashlib.sha256((SOURCE + " ".join(flags)).encode()).hexdigest()[:16]
    path = cache_dir() / "kernels" / f"winograd-{digest}.so"
    compiler = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    try:
        if not path.exists():
            if not compiler:
                raise OSError("no C compiler (set CC)")
            path.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryDirectory(dir=path.parent) as scratch:
                source, built = os.path.join(scratch, "winograd.c"), os.path.join(scratch, path.name)
                with open(source, "w") as file:
                    file.write(SOURCE)
                subprocess.run([compiler, *flags, source, "-o", built], check=True, capture_output=True, timeout=120)
                os.replace(built, path)  # whole or absent, even with other processes building it too
        library = ctypes.CDLL(str(path))
    except (OSError, subprocess.SubprocessError) as err:
        log.warning("ganedit: no Winograd kernel (direct convolutions instead): %s", err)
        return None
    long, ptr = ctypes.c_long, ctypes.c_void_p
    library.winograd_input.argtypes = [ptr, ptr, long, long, long, long, ctypes.c_int]
    library.winograd_output.argtypes = [ctypes.POINTER(ptr), ptr, long, long, long, long, ctypes.c_int, ctypes.c_int]
    return library


def suits(x, kind="conv"):
    """Whether a 3x3 'same' convolution of x ("conv") or of its nearest 2x upscaling ("upscale") goes faster as
    Winograd (prepare() must have succeeded)."""
    n, c, h, w = x.shape
    channels, pixels = SMALLEST[kind]
    return (ENABLED and x.device.type == "cpu" and x.dtype == torch.float32 and h % 4 == 0 and w % 4 == 0
            and c >= channels and h * w >= pixels and (c * h * w <= LARGEST or memory.kept))


def winograd_weight(weight):
    """[O, I, 3, 3] -> the 36 transformed weights G g G^T as 1x1 convolution weights [36, O, I, 1, 1]."""
    g = torch.tensor(WEIGHT_TRANSFORM, dtype=torch.float64, device=weight.device)
    u = torch.einsum("ak,oikl,bl->abio", g, weight.double(), g).float()  # [6, 6, I, O]
    return u.reshape(36, *u.shape[2:]).transpose(1, 2)[..., None, None]


def winograd_conv3x3(x, u, up=1):
    """F.conv2d(x, weight, padding=1) with u = winograd_weight(weight); x [N, C, H, W] with H, W multiples of 4.
    With ``up=2`` the weight holds four phases (see ``upscale_conv3x3``), interleaved into a map twice the size."""
    v = winograd_input(x.contiguous(memory_format=torch.channels_last))  # compiled: the producer writes it so
    return winograd_output([F.conv2d(v[k].permute(0, 3, 1, 2), u[k]) for k in range(36)], up)


# Nearest 2x upscaling then a 3x3 conv: output row 2i+p sees input rows i-1, i, i+1 through these taps
# (NEAREST_TAPS[p][offset][tap]): row 2i takes tap 0 from row i-1 and taps 1, 2 from row i; row 2i+1 taps 0, 1 from
# row i and tap 2 from row i+1. The same holds for columns.
NEAREST_TAPS = [[[1, 0, 0], [0, 1, 1], [0, 0, 0]], [[0, 0, 0], [1, 1, 0], [0, 0, 1]]]


def upscale_conv3x3(x, weight, taps=NEAREST_TAPS):
    """F.conv2d(nearest 2x upscaling of x, weight, padding=1) as one Winograd convolution of x itself with four
    output phases: 9 multiply-adds per input pixel and channel pair instead of 36 (or 16 as a transposed conv).
    Other ``taps`` ([2, 3, 3]: phase, input offset -1/0/+1, weight tap; the same for rows and columns) make it any
    2x upscaling convolution whose output pixel 2i+p reads input pixels i-1 ... i+1 (see stylegan2.up_conv_taps)."""
    taps = torch.as_tensor(taps, dtype=weight.dtype, device=weight.device)
    phases = torch.einsum("pak,oikl,qbl->pqoiab", taps, weight, taps).flatten(0, 2)  # [4 * O, I, 3, 3]
    return winograd_conv3x3(x, winograd_weight(phases), up=2)


@torch.library.custom_op("ganedit::winograd_input", mutates_args=())
def winograd_input(x: torch.Tensor) -> torch.Tensor:
    x = x.contiguous(memory_format=torch.channels_last)
    n, c, h, w = x.shape
    v = x.new_empty(36, n, h // 4, w // 4, c)
    _library.winograd_input(x.data_ptr(), v.data_ptr(), n, h, w, c, torch.get_num_threads())
    return v


@winograd_input.register_fake
def _(x):
    n, c, h, w = x.shape
    return x.new_empty(36, n, h // 4, w // 4, c)


@torch.library.custom_op("ganedit::winograd_output", mutates_args=())
def winograd_output(m: list[torch.Tensor], up: int) -> torch.Tensor:
    m = [t.contiguous(memory_format=torch.channels_last) for t in m]
    y = _output_like(m, up)
    pointers = (ctypes.c_void_p * 36)(*(t.data_ptr() for t in m))
    n, _, th, tw = m[0].shape
    _library.winograd_output(pointers, y.data_ptr(), n, th, tw, y.shape[1], up, torch.get_num_threads())
    return y


@winograd_output.register_fake
def _output_like(m, up):
    n, channels, th, tw = m[0].shape
    return torch.empty(n, channels // (up * up), 4 * up * th, 4 * up * tw, dtype=m[0].dtype, device=m[0].device,
                       memory_format=torch.channels_last)
