"""Winograd convolution for CPUs: a 3x3 'same' convolution in a quarter (or a fifth) of the multiply-adds.

Why: once compiled, synthesis on a CPU is bound by its 3x3 convolutions, which oneDNN already runs at the
CPU's peak, so only fewer multiply-adds make it faster. Winograd's algorithm (Lavin & Gray, 2016) computes each
m x m output tile from an (m+2) x (m+2) input tile: F(4x4, 3x3) with 36 multiplications per channel pair instead of
144, F(6x6, 3x3) with 64 instead of 324. The input tiles and the weights are transformed (B^T d B, G g G^T),
multiplied position by position ((m+2)^2 matrix products, done as 1x1 convolutions so that oneDNN runs them, with
weights that torch.compile folds and prepacks), and transformed back (A^T m A). Its rounding error is a few 1e-6
relative per convolution in float32 (F(6x6, 3x3) about twice F(4x4, 3x3)'s). Tiles that overhang the map read
zeros and drop what falls outside. Upscaling convolutions (nearest 2x, then 3x3) are the same thing with four
output phases (``upscale_conv3x3``).

The transforms are memory-bound passes that inductor compiles poorly (36 strided outputs per tile), so they are
a small C kernel here, built once per machine with the system C compiler (the one inductor needs anyway) into
ganedit's cache folder, and exposed as custom ops that torch.compile calls as they are. Without a compiler,
``prepare()`` returns False and convolutions stay direct. ``tile_for`` says where Winograd is used, and with which
tile: where it won.
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
# From this many input pixels on, 6x6 output tiles: 64 products per 36 outputs instead of 36 per 16 (Car-512
# 215 -> 197 ms, Cat-256 146 -> 134). On 32x32 maps they need as many products (6x6 tiles, 2 px wasted) with more
# transformed weights to read.
LARGE_TILES_FROM = 64 * 64
log = logging.getLogger("ganedit")

# The weight transforms G (the input and output transforms B^T, A^T are in the C source), by output tile size:
# Lavin & Gray's F(4x4, 3x3) (interpolation points 0, +-1, +-2) and F(6x6, 3x3) (0, +-1, +-2, +-1/2, as ncnn's).
WEIGHT_TRANSFORMS = {
    4: [[1 / 4, 0, 0], [-1 / 6, -1 / 6, -1 / 6], [-1 / 6, 1 / 6, -1 / 6],
        [1 / 24, 1 / 12, 1 / 6], [1 / 24, -1 / 12, 1 / 6], [0, 0, 1]],
    6: [[1, 0, 0], [-2 / 9, -2 / 9, -2 / 9], [-2 / 9, 2 / 9, -2 / 9], [1 / 90, 1 / 45, 2 / 45],
        [1 / 90, -1 / 45, 2 / 45], [1 / 45, 1 / 90, 1 / 180], [1 / 45, -1 / 90, 1 / 180], [0, 0, 1]],
}

SOURCE = r"""
/* Winograd F(4x4, 3x3) and F(6x6, 3x3) tile transforms on channels-last float32 maps (ganedit.networks.winograd).
   A tile of m x m outputs reads alpha x alpha = (m + 2) x (m + 2) inputs. */
#define CB 64  /* channels per step: a tile's alpha^2 rows of CB floats stay in L1 */
static const float ZEROS[CB];

static inline void bt4(const float *const in[6], float *const out[6], int nc) {  /* out = B^T in, F(4x4, 3x3) */
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

static inline void at4(const float *const in[6], float *const out[4], int nc) {  /* out = A^T in, F(4x4, 3x3) */
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

/* F(6x6, 3x3), interpolation points 0, +-1, +-2, +-1/2 (scaled as in ncnn, so that the products stay of one size) */
static inline void bt6(const float *const in[8], float *const out[8], int nc) {
    const float *d0 = in[0], *d1 = in[1], *d2 = in[2], *d3 = in[3], *d4 = in[4], *d5 = in[5], *d6 = in[6], *d7 = in[7];
    float *o0 = out[0], *o1 = out[1], *o2 = out[2], *o3 = out[3], *o4 = out[4], *o5 = out[5], *o6 = out[6];
    float *o7 = out[7];
    #pragma omp simd
    for (int c = 0; c < nc; c++) {
        float a = d2[c] + d6[c] - 4.25f * d4[c], b = d1[c] + d5[c] - 4.25f * d3[c];
        float e = d6[c] + 0.25f * d2[c] - 1.25f * d4[c], f = 0.5f * d1[c] - 2.5f * d3[c] + 2 * d5[c];
        float g = d6[c] + 4 * (d2[c] - 1.25f * d4[c]), h = 2 * d1[c] - 2.5f * d3[c] + 0.5f * d5[c];
        o0[c] = d0[c] - d6[c] + 5.25f * (d4[c] - d2[c]);
        o1[c] = a + b;
        o2[c] = a - b;
        o3[c] = e + f;
        o4[c] = e - f;
        o5[c] = g + h;
        o6[c] = g - h;
        o7[c] = d7[c] - d1[c] + 5.25f * (d3[c] - d5[c]);
    }
}

static inline void at6(const float *const in[8], float *const out[6], int nc) {
    const float *m0 = in[0], *m1 = in[1], *m2 = in[2], *m3 = in[3], *m4 = in[4], *m5 = in[5], *m6 = in[6], *m7 = in[7];
    float *o0 = out[0], *o1 = out[1], *o2 = out[2], *o3 = out[3], *o4 = out[4], *o5 = out[5];
    #pragma omp simd
    for (int c = 0; c < nc; c++) {
        float a = m1[c] + m2[c], b = m1[c] - m2[c], p = m3[c] + m4[c], q = m3[c] - m4[c];
        float r = m5[c] + m6[c], s = m5[c] - m6[c];
        o0[c] = m0[c] + a + p + 32 * r;
        o1[c] = b + 2 * q + 16 * s;
        o2[c] = a + 4 * p + 8 * r;
        o3[c] = b + 8 * q + 4 * s;
        o4[c] = a + 16 * p + 2 * r;
        o5[c] = b + 32 * q + s + m7[c];
    }
}

static inline void bt(int m, const float *const in[8], float *const out[8], int nc) {
    if (m == 4) bt4(in, out, nc); else bt6(in, out, nc);
}

static inline void at(int m, const float *const in[8], float *const out[6], int nc) {
    if (m == 4) at4(in, out, nc); else at6(in, out, nc);
}

/* x [N, H, W, C] -> v [alpha^2, N, ceil(H/m), ceil(W/m), C]: v[alpha*i+j] of a tile = (B^T d B)[i][j], d its
   alpha x alpha input, zero outside the map. */
void winograd_input(const float *x, float *v, long N, long H, long W, long C, int m, int threads) {
    int alpha = m + 2;
    long th = (H + m - 1) / m, tw = (W + m - 1) / m, tiles = N * th * tw;
    #pragma omp parallel for num_threads(threads)
    for (long t = 0; t < tiles; t++) {
        long n = t / (th * tw), ti = t / tw % th, tj = t % tw;
        float tmp[8][8][CB];
        for (long c0 = 0; c0 < C; c0 += CB) {
            int nc = C - c0 < CB ? (int)(C - c0) : CB;
            for (int b = 0; b < alpha; b++) {
                const float *in[8];
                float *out[8];
                long col = m * tj - 1 + b;
                for (int a = 0; a < alpha; a++) {
                    long row = m * ti - 1 + a;
                    int inside = row >= 0 && row < H && col >= 0 && col < W;
                    in[a] = inside ? x + ((n * H + row) * W + col) * C + c0 : ZEROS;
                    out[a] = tmp[a][b];
                }
                bt(m, in, out, nc);
            }
            for (int i = 0; i < alpha; i++) {
                const float *in[8];
                float *out[8];
                for (int j = 0; j < alpha; j++) {
                    in[j] = tmp[i][j];
                    out[j] = v + ((alpha * i + j) * tiles + t) * C + c0;
                }
                bt(m, in, out, nc);
            }
        }
    }
}

/* mats: alpha^2 maps [N, ceil(H/m), ceil(W/m), up*up*O] -> y [N, up*H, up*W, O], H x W the input map's size. The
   channels of mats are up*up phases of O (phase p*up+q first): each m x m tile of a phase, A^T M A, goes to rows
   up*r+p and columns up*c+q; what falls beyond the map is dropped. */
void winograd_output(const float *const *mats, float *y, long N, long H, long W, long O, int up, int m, int threads) {
    int alpha = m + 2;
    long th = (H + m - 1) / m, tw = (W + m - 1) / m, tiles = N * th * tw, phases = (long)up * up;
    #pragma omp parallel for num_threads(threads)
    for (long t = 0; t < tiles; t++) {
        long n = t / (th * tw), ti = t / tw % th, tj = t % tw;
        float tmp[6][8][CB], dropped[CB];
        for (long ph = 0; ph < phases; ph++) {
            long p = ph / up, q = ph % up;
            for (long c0 = 0; c0 < O; c0 += CB) {
                int nc = O - c0 < CB ? (int)(O - c0) : CB;
                for (int b = 0; b < alpha; b++) {
                    const float *in[8];
                    float *out[6];
                    for (int a = 0; a < alpha; a++) in[a] = mats[alpha * a + b] + (t * phases + ph) * O + c0;
                    for (int i = 0; i < m; i++) out[i] = tmp[i][b];
                    at(m, in, out, nc);
                }
                for (int i = 0; i < m && m * ti + i < H; i++) {
                    const float *in[8];
                    float *out[6];
                    long row = up * (m * ti + i) + p;
                    for (int b = 0; b < alpha; b++) in[b] = tmp[i][b];
                    for (int j = 0; j < m; j++) {
                        long col = m * tj + j;
                        out[j] = col < W ? y + ((n * up * H + row) * up * W + up * col + q) * O + c0 : dropped;
                    }
                    at(m, in, out, nc);
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
    long, ptr, integer = ctypes.c_long, ctypes.c_void_p, ctypes.c_int
    library.winograd_input.argtypes = [ptr, ptr, long, long, long, long, integer, integer]
    library.winograd_output.argtypes = [ctypes.POINTER(ptr), ptr, long, long, long, long, integer, integer, integer]
    return library


def tile_for(x, kind="conv"):
    """The output tile size (4 or 6) with which a 3x3 'same' convolution of x ("conv") or of its nearest 2x upscaling
    ("upscale") goes faster as Winograd, or 0 where a direct convolution is faster (or prepare() failed)."""
    n, c, h, w = x.shape
    channels, pixels = SMALLEST[kind]
    if not (ENABLED and x.device.type == "cpu" and x.dtype == torch.float32 and c >= channels and h * w >= pixels
            and (c * h * w <= LARGEST or memory.kept)):
        return 0
    return 6 if h * w >= LARGE_TILES_FROM else 4


def winograd_weight(weight, tile=4):
    """[O, I, 3, 3] -> the transformed weights G g G^T as 1x1 convolution weights [(tile + 2)^2, O, I, 1, 1]."""
    g = torch.tensor(WEIGHT_TRANSFORMS[tile], dtype=torch.float64, device=weight.device)
    u = torch.einsum("ak,oikl,bl->abio", g, weight.double(), g).float()  # [alpha, alpha, I, O]
    return u.reshape(-1, *u.shape[2:]).transpose(1, 2)[..., None, None]


def winograd_conv3x3(x, u, up=1):
    """F.conv2d(x, weight, padding=1) with u = winograd_weight(weight, tile), whose length says the tile size.
    With ``up=2`` the weight holds four phases (see ``upscale_conv3x3``), interleaved into a map twice the size."""
    tile = round(len(u) ** 0.5) - 2
    v = winograd_input(x.contiguous(memory_format=torch.channels_last), tile)  # compiled: the producer writes it so
    products = [F.conv2d(v[k].permute(0, 3, 1, 2), u[k]) for k in range(len(u))]
    return winograd_output(products, up, x.shape[2], x.shape[3], tile)


# Nearest 2x upscaling then a 3x3 conv: output row 2i+p sees input rows i-1, i, i+1 through these taps
# (NEAREST_TAPS[p][offset][tap]): row 2i takes tap 0 from row i-1 and taps 1, 2 from row i; row 2i+1 taps 0, 1 from
# row i and tap 2 from row i+1. The same holds for columns.
NEAREST_TAPS = [[[1, 0, 0], [0, 1, 1], [0, 0, 0]], [[0, 0, 0], [1, 1, 0], [0, 0, 1]]]


def upscale_conv3x3(x, weight, tile=4, taps=NEAREST_TAPS):
    """F.conv2d(nearest 2x upscaling of x, weight, padding=1) as one Winograd convolution of x itself with four
    output phases: 9 multiply-adds per input pixel and channel pair instead of 36 (or 16 as a transposed conv).
    Other ``taps`` ([2, 3, 3]: phase, input offset -1/0/+1, weight tap; the same for rows and columns) make it any
    2x upscaling convolution whose output pixel 2i+p reads input pixels i-1 ... i+1 (see stylegan2.up_conv_taps)."""
    taps = torch.as_tensor(taps, dtype=weight.dtype, device=weight.device)
    phases = torch.einsum("pak,oikl,qbl->pqoiab", taps, weight, taps).flatten(0, 2)  # [4 * O, I, 3, 3]
    return winograd_conv3x3(x, winograd_weight(phases, tile), up=2)


def _tiles(size, tile):
    return -(-size // tile)


@torch.library.custom_op("ganedit::winograd_input", mutates_args=())
def winograd_input(x: torch.Tensor, tile: int) -> torch.Tensor:
    x = x.contiguous(memory_format=torch.channels_last)
    n, c, h, w = x.shape
    v = _input_like(x, tile)
    _library.winograd_input(x.data_ptr(), v.data_ptr(), n, h, w, c, tile, torch.get_num_threads())
    return v


@winograd_input.register_fake
def _input_like(x, tile):
    n, c, h, w = x.shape
    return x.new_empty((tile + 2) ** 2, n, _tiles(h, tile), _tiles(w, tile), c)


@torch.library.custom_op("ganedit::winograd_output", mutates_args=())
def winograd_output(m: list[torch.Tensor], up: int, height: int, width: int, tile: int) -> torch.Tensor:
    """The products m (tile + 2)^2 maps of tiles -> the convolution's output for an input of height x width."""
    m = [t.contiguous(memory_format=torch.channels_last) for t in m]
    y = _output_like(m, up, height, width, tile)
    pointers = (ctypes.c_void_p * len(m))(*(t.data_ptr() for t in m))
    _library.winograd_output(pointers, y.data_ptr(), y.shape[0], height, width, y.shape[1], up, tile,
                             torch.get_num_threads())
    return y


@winograd_output.register_fake
def _output_like(m, up, height, width, tile):
    n, channels = m[0].shape[:2]
    return torch.empty(n, channels // (up * up), up * height, up * width, dtype=m[0].dtype, device=m[0].device,
                       memory_format=torch.channels_last)
