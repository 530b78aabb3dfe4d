/* Per-unit reductions of one step's activations in one read: the statistics pass's CPU kernel.
 *
 * fold(values, widths, shift, active, zeros, minimum, maximum, sums, squares, threads) reads each
 * probe's values (rows × units, float32, C order: one row per example and position; its units are
 * ``widths[i]``) once and writes, per unit of all probes side by side, how many values are > 0 and
 * == 0 (int32), the minimum and maximum (float32; NaN where any value is NaN) and the sums of
 * (value - shift) and (value - shift)² (float64). Units are taken 16 at a time (a tile), so a tile's
 * six running results stay in vector registers while its rows stream past; the sums run in float32
 * over blocks of 64 rows and are added up in float64. The tiles are shared among ``threads`` threads
 * by their number of values.
 *
 * worker/engine/fold_kernel.py loads it; where it was not built, the pass uses XLA instead.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>

#define TILE 16
#define BLOCK 64
#define MAX_THREADS 64
/* Fewer values than this per thread are not worth starting a thread for. */
#define VALUES_PER_THREAD 65536

typedef struct {
    const float *values; /* the probe's rows × units */
    Py_ssize_t rows, units, first; /* first: the tile's first unit within the probe */
    int width; /* units in the tile, at most TILE */
    Py_ssize_t offset; /* the tile's first unit within all probes' units */
} Tile;

typedef struct {
    const float *shift;
    int32_t *active, *zeros;
    float *minimum, *maximum;
    double *sums, *squares;
} Outputs;

typedef struct {
    const Tile *tiles;
    Py_ssize_t begin, end;
    const Outputs *out;
} Share;

/* One tile's running results. */
typedef struct {
    int32_t above[TILE], zero[TILE], nan[TILE];
    float low[TILE], high[TILE], centre[TILE];
} Running;

/* Rows r0..r1 of a tile's ``width`` units into ``run``, their sums into f1 and f2. Inlined where the
 * width is the constant TILE, so the loop over units has a fixed trip count and is vectorised. */
static inline __attribute__((always_inline)) void fold_block(const Tile *tile, Py_ssize_t r0, Py_ssize_t r1,
                                                             const int width, Running *run, float *f1,
                                                             float *f2) {
    for (Py_ssize_t r = r0; r < r1; r++) {
        const float *row = tile->values + r * tile->units + tile->first;
        for (int t = 0; t < width; t++) {
            const float v = row[t];
            run->above[t] += v > 0.0f;
            run->zero[t] += v == 0.0f;
            run->nan[t] |= v != v;
            run->low[t] = v < run->low[t] ? v : run->low[t];
            run->high[t] = v > run->high[t] ? v : run->high[t];
            const float d = v - run->centre[t];
            f1[t] += d;
            f2[t] += d * d;
        }
    }
}

__attribute__((target_clones("avx2", "default")))
static void fold_tile(const Tile *tile, const Outputs *out) {
    const int width = tile->width;
    Running run = {{0}, {0}, {0}, {0}, {0}, {0}};
    double s1[TILE] = {0}, s2[TILE] = {0};
    for (int t = 0; t < TILE; t++) {
        run.low[t] = INFINITY;
        run.high[t] = -INFINITY;
        run.centre[t] = t < width ? out->shift[tile->offset + t] : 0.0f;
    }
    for (Py_ssize_t r0 = 0; r0 < tile->rows; r0 += BLOCK) {
        const Py_ssize_t r1 = r0 + BLOCK < tile->rows ? r0 + BLOCK : tile->rows;
        float f1[TILE] = {0}, f2[TILE] = {0};
        if (width == TILE)
            fold_block(tile, r0, r1, TILE, &run, f1, f2);
        else
            fold_block(tile, r0, r1, width, &run, f1, f2);
        for (int t = 0; t < TILE; t++) {
            s1[t] += f1[t];
            s2[t] += f2[t];
        }
    }
    for (int t = 0; t < width; t++) {
        const Py_ssize_t u = tile->offset + t;
        out->active[u] = run.above[t];
        out->zeros[u] = run.zero[t];
        out->minimum[u] = run.nan[t] ? NAN : run.low[t];
        out->maximum[u] = run.nan[t] ? NAN : run.high[t];
        out->sums[u] = s1[t];
        out->squares[u] = s2[t];
    }
}

static void *fold_share(void *arg) {
    const Share *share = (const Share *)arg;
    for (Py_ssize_t i = share->begin; i < share->end; i++)
        fold_tile(&share->tiles[i], share->out);
    return NULL;
}

/* Folds every tile, the tiles split into ``threads`` runs of about equal numbers of values; the
 * calling thread takes the first run, and the run of a thread that could not be started. */
static void fold_tiles(const Tile *tiles, Py_ssize_t count, const Outputs *out, int threads) {
    Py_ssize_t total = 0;
    for (Py_ssize_t i = 0; i < count; i++)
        total += tiles[i].rows * tiles[i].width;
    if (threads > total / VALUES_PER_THREAD)
        threads = (int)(total / VALUES_PER_THREAD);
    if (threads > MAX_THREADS)
        threads = MAX_THREADS;
    if (threads <= 1) {
        Share all = {tiles, 0, count, out};
        fold_share(&all);
        return;
    }
    Share shares[MAX_THREADS];
    pthread_t ids[MAX_THREADS];
    int started[MAX_THREADS] = {0};
    Py_ssize_t i = 0, done = 0;
    for (int s = 0; s < threads; s++) {
        const Py_ssize_t target = total * (s + 1) / threads;
        shares[s].tiles = tiles;
        shares[s].out = out;
        shares[s].begin = i;
        while (i < count && (done < target || s == threads - 1)) {
            done += tiles[i].rows * tiles[i].width;
            i++;
        }
        shares[s].end = i;
    }
    for (int s = 1; s < threads; s++)
        started[s] = pthread_create(&ids[s], NULL, fold_share, &shares[s]) == 0;
    fold_share(&shares[0]);
    for (int s = 1; s < threads; s++) {
        if (started[s])
            pthread_join(ids[s], NULL);
        else
            fold_share(&shares[s]);
    }
}

#define OUTPUTS 7

static PyObject *fold(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *values, *widths;
    Py_buffer b[OUTPUTS]; /* shift, active, zeros, minimum, maximum, sums, squares */
    int threads;
    if (!PyArg_ParseTuple(args, "OOy*w*w*w*w*w*w*i", &values, &widths, &b[0], &b[1], &b[2], &b[3], &b[4],
                          &b[5], &b[6], &threads))
        return NULL;
    const Py_ssize_t sizes[OUTPUTS] = {4, 4, 4, 4, 4, 8, 8};
    const Py_ssize_t units = b[0].len / (Py_ssize_t)sizeof(float);
    PyObject *result = NULL, *probes = NULL, *counts = NULL;
    Py_buffer *held = NULL;
    Tile *tiles = NULL;
    Py_ssize_t probe_count = 0, got = 0, tile_count = 0;
    for (int i = 0; i < OUTPUTS; i++) {
        if (b[i].len != units * sizes[i]) {
            PyErr_SetString(PyExc_ValueError, "an output does not hold one item per unit of the right size");
            goto finally;
        }
    }
    probes = PySequence_Fast(values, "values must be a sequence of float32 arrays");
    counts = PySequence_Fast(widths, "widths must be a sequence of ints");
    if (probes == NULL || counts == NULL)
        goto finally;
    probe_count = PySequence_Fast_GET_SIZE(probes);
    if (PySequence_Fast_GET_SIZE(counts) != probe_count) {
        PyErr_SetString(PyExc_ValueError, "one width per probe");
        goto finally;
    }
    held = PyMem_Calloc(probe_count > 0 ? probe_count : 1, sizeof(Py_buffer));
    tiles = PyMem_Calloc(units + probe_count + 1, sizeof(Tile)); /* ⌈width / TILE⌉ per probe */
    if (held == NULL || tiles == NULL) {
        PyErr_NoMemory();
        goto finally;
    }
    Py_ssize_t offset = 0;
    for (Py_ssize_t p = 0; p < probe_count; p++) {
        const Py_ssize_t width = PyLong_AsSsize_t(PySequence_Fast_GET_ITEM(counts, p));
        if (width == -1 && PyErr_Occurred())
            goto finally;
        if (PyObject_GetBuffer(PySequence_Fast_GET_ITEM(probes, p), &held[p], PyBUF_C_CONTIGUOUS) < 0)
            goto finally;
        got++;
        if (width <= 0 || offset + width > units || held[p].len % (width * (Py_ssize_t)sizeof(float)) != 0) {
            PyErr_SetString(PyExc_ValueError, "values do not hold whole rows of their width's units");
            goto finally;
        }
        const Py_ssize_t rows = held[p].len / (width * (Py_ssize_t)sizeof(float));
        for (Py_ssize_t first = 0; first < width; first += TILE) {
            Tile *tile = &tiles[tile_count++];
            tile->values = (const float *)held[p].buf;
            tile->rows = rows;
            tile->units = width;
            tile->first = first;
            tile->width = (int)(width - first < TILE ? width - first : TILE);
            tile->offset = offset + first;
        }
        offset += width;
    }
    if (offset != units) {
        PyErr_SetString(PyExc_ValueError, "the widths do not add up to the shift's units");
        goto finally;
    }
    Outputs out = {(const float *)b[0].buf, (int32_t *)b[1].buf, (int32_t *)b[2].buf, (float *)b[3].buf,
                   (float *)b[4].buf, (double *)b[5].buf, (double *)b[6].buf};
    Py_BEGIN_ALLOW_THREADS
    fold_tiles(tiles, tile_count, &out, threads);
    Py_END_ALLOW_THREADS
    result = Py_None;
    Py_INCREF(result);
finally:
    for (Py_ssize_t p = 0; p < got; p++)
        PyBuffer_Release(&held[p]);
    PyMem_Free(held);
    PyMem_Free(tiles);
    Py_XDECREF(probes);
    Py_XDECREF(counts);
    for (int i = 0; i < OUTPUTS; i++)
        PyBuffer_Release(&b[i]);
    return result;
}

static PyMethodDef methods[] = {
    {"fold", fold, METH_VARARGS,
     "fold(values, widths, shift, active, zeros, minimum, maximum, sums, squares, threads): one "
     "step's per-unit reductions of every probe's float32 rows × widths[i] units into the float32 "
     "shift's units side by side (int32, int32, float32, float32, float64, float64 buffers)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_fold_rows", NULL, -1, methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__fold_rows(void) { return PyModule_Create(&module); }
