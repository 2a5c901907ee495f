/* The compiled kernels of paddlex_interpret (loaded with ctypes by native.py; plain C, no Python
 * API). Optional: when they are not built, the callers compute the same things with numpy.
 *
 * 1. Quickshift (quickshift.py): density and linking.
 *    For each window offset (a flat shift k > 0 of the padded planes, see quickshift.py), over the
 *    pixels p in [0, n - k):
 *      colour(p) = sum_c (x_c[p] - x_c[p + k])^2      (scikit-image's order of operations)
 *      e(p)      = exp(max((colour(p) + s) * inv, -700))
 *      acc[p] += e(p);  acc[p + k] += e(p)
 *    Compile without floating-point contraction (-ffp-contract=off): the colour distances must be
 *    the same doubles as scikit-image's, since the linking compares them with ties. exp is a
 *    polynomial (Cody-Waite reduction, degree-13 Taylor, ~1 ulp), vectorisable, unlike libm's.
 * 2. LIME's perturbed inputs (perturbation.py, compose_normalised): copies only. */
#include <float.h>
#include <stdint.h>
#include <string.h>

/* PXI_PORTABLE (-DPXI_PORTABLE) builds what other compilers and CPUs get: no clones, no fma. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__) \
    && __GNUC__ >= 12 && !defined(PXI_PORTABLE)
#define PXI_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#define PXI_FMA(a, b, c) __builtin_fma(a, b, c) /* one instruction in the v3 / v4 clones */
#else
#define PXI_CLONES
#define PXI_FMA(a, b, c) ((a) * (b) + (c))     /* no contraction: two roundings, same accuracy */
#endif

#define PXI_MIN_EXPONENT (-700.0)

static inline double pxi_exp_nonpositive(double x)
{
    /* x in [-700, 0]: x = n ln2 + r, |r| <= ln2 / 2, exp(x) = 2^n exp(r). */
    const double inv_ln2 = 1.4426950408889634;
    const double ln2_hi = 6.93147180369123816490e-01;
    const double ln2_lo = 1.90821492927058770002e-10;
    const double shifter = 6755399441055744.0; /* 1.5 * 2^52: adding it rounds to an integer */
    double kd = PXI_FMA(x, inv_ln2, shifter);
    int64_t ki;
    memcpy(&ki, &kd, sizeof ki);
    kd -= shifter;
    double r = PXI_FMA(-kd, ln2_lo, PXI_FMA(-kd, ln2_hi, x));
    double p = 1.0 / 6227020800.0;                  /* 1/13! */
    p = PXI_FMA(p, r, 1.0 / 479001600.0);    /* 1/12! */
    p = PXI_FMA(p, r, 1.0 / 39916800.0);
    p = PXI_FMA(p, r, 1.0 / 3628800.0);
    p = PXI_FMA(p, r, 1.0 / 362880.0);
    p = PXI_FMA(p, r, 1.0 / 40320.0);
    p = PXI_FMA(p, r, 1.0 / 5040.0);
    p = PXI_FMA(p, r, 1.0 / 720.0);
    p = PXI_FMA(p, r, 1.0 / 120.0);
    p = PXI_FMA(p, r, 1.0 / 24.0);
    p = PXI_FMA(p, r, 1.0 / 6.0);
    p = PXI_FMA(p, r, 0.5);
    p = PXI_FMA(p, r, 1.0);
    p = PXI_FMA(p, r, 1.0);
    int64_t bits;
    memcpy(&bits, &p, sizeof bits);
    bits += (ki - 6755399441055744LL) << 52; /* n = ki - bits(shifter): scale by 2^n */
    memcpy(&p, &bits, sizeof p);
    return p;
}

PXI_CLONES
static void pxi_terms3(const double *restrict a0, const double *restrict a1,
                       const double *restrict a2, int64_t k, int64_t m, double s, double inv,
                       double *restrict colour, double *restrict e)
{
    for (int64_t p = 0; p < m; ++p) {
        double t = a0[p] - a0[p + k];
        double d = t * t;
        t = a1[p] - a1[p + k];
        d += t * t;
        t = a2[p] - a2[p + k];
        d += t * t;
        colour[p] = d;
        double z = (d + s) * inv;
        z = z > PXI_MIN_EXPONENT ? z : PXI_MIN_EXPONENT;
        e[p] = pxi_exp_nonpositive(z);
    }
}

PXI_CLONES
static void pxi_colour_add(const double *restrict a, int64_t k, int64_t m, int first,
                           double *restrict colour)
{
    if (first) {
        for (int64_t p = 0; p < m; ++p) {
            double t = a[p] - a[p + k];
            colour[p] = t * t;
        }
    } else {
        for (int64_t p = 0; p < m; ++p) {
            double t = a[p] - a[p + k];
            colour[p] += t * t;
        }
    }
}

PXI_CLONES
static void pxi_terms(const double *restrict colour, int64_t m, double s, double inv,
                      double *restrict e)
{
    for (int64_t p = 0; p < m; ++p) {
        double z = (colour[p] + s) * inv;
        z = z > PXI_MIN_EXPONENT ? z : PXI_MIN_EXPONENT;
        e[p] = pxi_exp_nonpositive(z);
    }
}

PXI_CLONES
static void pxi_accumulate(const double *restrict e, int64_t k, int64_t m, double *restrict acc)
{
    for (int64_t p = 0; p < m; ++p)
        acc[p] += e[p];
    double *restrict shifted = acc + k;
    for (int64_t p = 0; p < m; ++p)
        shifted[p] += e[p];
}

/* planes: nc pointers to flat arrays of n doubles; shifts/spatial: n_off offsets; acc: n doubles
 * (added to); work: 2 * block doubles.
 * Only the pixels p in [lo, hi) are done (a thread's share), `block` of them at a time for every
 * offset, so that the planes, acc and the terms stay in cache. */
int pxi_qs_density(const double *const *planes, int32_t nc, int64_t n, const int64_t *shifts,
                   const double *spatial, int32_t n_off, double inv, double *acc, double *work,
                   int64_t lo, int64_t hi, int64_t block)
{
    double *colour = work, *e = work + block;
    if (block <= 0)
        return -1;
    for (int64_t b0 = lo; b0 < hi; b0 += block) {
        int64_t b1 = b0 + block < hi ? b0 + block : hi;
        for (int32_t i = 0; i < n_off; ++i) {
            int64_t k = shifts[i];
            if (k <= 0 || k >= n)
                continue;
            int64_t end = b1 < n - k ? b1 : n - k;
            if (end <= b0)
                continue;
            int64_t m = end - b0;
            if (nc == 3) {
                pxi_terms3(planes[0] + b0, planes[1] + b0, planes[2] + b0, k, m, spatial[i], inv,
                           colour, e);
            } else {
                for (int32_t c = 0; c < nc; ++c)
                    pxi_colour_add(planes[c] + b0, k, m, c == 0, colour);
                pxi_terms(colour, m, spatial[i], inv, e);
            }
            pxi_accumulate(e, k, m, acc + b0);
        }
    }
    return 0;
}

/* Linking: for each pixel p in [lo, hi) with a finite density, its parent is the denser pixel
 * q = p + shifts[j] with the smallest (colour(p, q) + spatial[j], index[j]): scikit-image's
 * strict `dist < closest` scan in raster order (index = raster rank). The offsets come sorted by
 * spatial distance, so the scan stops at the first offset whose spatial part alone exceeds the
 * best distance (colour distances are never negative). closest / choice get the best distance
 * (DBL_MAX if none) and its index (-1 if none). */
PXI_CLONES
int pxi_qs_link(const double *const *planes, int32_t nc, int64_t n, const double *dens,
                const int64_t *shifts, const double *spatial, const int32_t *index,
                int32_t n_off, int64_t lo, int64_t hi, double *closest, int32_t *choice)
{
    for (int64_t p = lo; p < hi; ++p) {
        double best = DBL_MAX;
        int32_t best_index = -1;
        double dp = dens[p];
        if (dp > -DBL_MAX) {
            for (int32_t j = 0; j < n_off; ++j) {
                double s = spatial[j];
                if (s > best)
                    break;
                int64_t q = p + shifts[j];
                if (q < 0 || q >= n || !(dens[q] > dp))
                    continue;
                double t = planes[0][p] - planes[0][q];
                double d = t * t;
                for (int32_t c = 1; c < nc; ++c) {
                    t = planes[c][p] - planes[c][q];
                    d += t * t;
                }
                d += s;
                if (d < best || (d == best && index[j] < best_index)) {
                    best = d;
                    best_index = index[j];
                }
            }
        }
        closest[p] = best;
        choice[p] = best_index;
    }
    return 0;
}

/* The exp used above, for tests: out[i] = exp(max(x[i], -700)) for x[i] <= 0. */
PXI_CLONES
void pxi_qs_exp(const double *x, int64_t n, double *out)
{
    for (int64_t i = 0; i < n; ++i) {
        double z = x[i] > PXI_MIN_EXPONENT ? x[i] : PXI_MIN_EXPONENT;
        out[i] = pxi_exp_nonpositive(z);
    }
}

/* LIME's perturbed model inputs, b images at once:
 *   out[i, c, p] = rows[i, seg[p]] ? img[c, p] : fill[c, p]
 * img, fill: `channels` float32 planes of npix pixels (the normalised image and fill); seg: the
 * superpixel label of each pixel, in [0, d); rows: b x d bytes (0 = hidden); words: d uint32 and
 * pixel_words: npix uint32 of scratch; out: b x channels x npix floats. Copies only, so the values
 * are the inputs' bits. Images go 32 at a time: words[s] holds superpixel s's kept bit for each of
 * them and pixel_words[p] = words[seg[p]] (one lookup per pixel per 32 images); then each output
 * plane is one vectorised select, written front to back (one store stream at a time: measured
 * 1.5x faster than interleaving the 32 images over blocks of pixels). Returns 0, -1 for bad
 * sizes, -2 for a label outside [0, d) (checked before anything is written). */
static inline void pxi_select(const uint32_t *restrict w, uint32_t bit, const float *restrict a,
                              const float *restrict f, float *restrict o, int64_t n)
{
    for (int64_t p = 0; p < n; ++p)
        o[p] = (w[p] & bit) ? a[p] : f[p];
}

PXI_CLONES
int pxi_compose(const float *img, const float *fill, int32_t channels, int64_t npix,
                const int32_t *seg, const uint8_t *rows, int32_t d, int32_t b, uint32_t *words,
                uint32_t *pixel_words, float *out)
{
    if (channels < 1 || npix < 0 || d < 1 || b < 0)
        return -1;
    for (int64_t p = 0; p < npix; ++p)
        if ((uint32_t)seg[p] >= (uint32_t)d)
            return -2;
    for (int32_t g = 0; g < b; g += 32) {
        const int32_t m = b - g < 32 ? b - g : 32;
        for (int32_t s = 0; s < d; ++s) {
            uint32_t word = 0;
            for (int32_t j = 0; j < m; ++j)
                word |= (uint32_t)(rows[(int64_t)(g + j) * d + s] != 0) << j;
            words[s] = word;
        }
        for (int64_t p = 0; p < npix; ++p)
            pixel_words[p] = words[seg[p]];
        for (int32_t j = 0; j < m; ++j) {
            float *o = out + (int64_t)(g + j) * channels * npix;
            for (int32_t c = 0; c < channels; ++c)
                pxi_select(pixel_words, (uint32_t)1 << j, img + (int64_t)c * npix,
                           fill + (int64_t)c * npix, o + (int64_t)c * npix, npix);
        }
    }
    return 0;
}

/* The calling convention of the functions above; native.py loads a library only when this
 * equals its own ABI, so a stale build is never called with other arguments. Raise it
 * whenever a signature changes or a function is added. */
int pxi_abi_version(void) { return 4; }

/* Python's build_ext names an init function for every extension (used on Windows only). */
void *PyInit__kernels(void) { return 0; }
