/* mlcc thread pool: a fixed set of pthreads that run the tasks of one parallel kernel at a time.
 *
 * Included by a generated C model (static functions only: every model instance owns its own pool, two
 * models in one process share nothing). The thread that calls mlcc_pool_run works too, so a pool of N
 * threads starts N - 1 workers; with N = 1 there are no workers and tasks run inline, in order.
 * Workers spin for MLCC_SPIN_NS after a parallel region (the next one usually follows within microseconds,
 * and waking a sleeping thread costs tens of microseconds, more in a VM) and then sleep on a condition
 * variable, so an idle model costs no CPU. */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <time.h>

#ifndef MLCC_SPIN_NS
#define MLCC_SPIN_NS 300000
#endif

static inline void mlcc_cpu_relax(void) {
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
  __builtin_ia32_pause();
#elif defined(__GNUC__) && defined(__aarch64__)
  __asm__ __volatile__("yield");
#endif
}

static inline int64_t mlcc_now_ns(void) {
  struct timespec ts;
  timespec_get(&ts, TIME_UTC);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Spin while *value < bound, for at most MLCC_SPIN_NS; every 64 turns the clock is read and the CPU offered
 * to any other runnable thread (sched_yield returns at once when there is none). With more runnable threads
 * than CPUs (a busy neighbour on 2 vCPUs: squeezenet at 2 threads), a spinning thread otherwise holds a CPU
 * that the worker it waits for needs: 9.9 ms per run without the yield, 7.4 with it (4.0 alone either way). */
static inline void mlcc_spin_while_below(atomic_int_fast64_t *value, int64_t bound) {
  const int64_t until = mlcc_now_ns() + MLCC_SPIN_NS;
  for (int turn = 1; atomic_load(value) < bound; ++turn) {
    mlcc_cpu_relax();
    if (turn % 64 == 0) {
      if (mlcc_now_ns() > until) return;
      sched_yield();
    }
  }
}

typedef void (*mlcc_task_fn)(void *ctx, int64_t task, int worker);

/* The tasks of a region a thread takes first, in order: its share of [0, tasks), contiguous, so that thread w
   runs the same part of every kernel (a kernel splitting its channels in halves writes the half that the next
   kernel splitting its channels in halves reads on the same core; data another core wrote costs about three
   times an L2 hit to read here). A thread with none left takes the others' (next is shared). */
typedef struct mlcc_range {
  _Alignas(64) atomic_int_fast64_t next; /* a cache line of its own */
  int64_t end;
} mlcc_range;

typedef struct mlcc_pool {
  int threads;                  /* workers + the calling thread */
  pthread_t *workers;
  pthread_mutex_t lock;
  pthread_cond_t wake;          /* a new region, or shutdown */
  pthread_cond_t done;          /* the last task of a region finished */
  atomic_int_fast64_t generation; /* bumped once per region */
  mlcc_range *ranges;           /* per thread: the next task of its share, and the share's end */
  atomic_int_fast64_t finished; /* tasks finished in this region */
  int64_t tasks;
  int active;                   /* workers inside a region (guarded by lock) */
  mlcc_task_fn fn;
  void *ctx;
  int shutdown;
} mlcc_pool;

typedef struct mlcc_worker_arg {
  mlcc_pool *pool;
  int index;
} mlcc_worker_arg;

/* Take and run tasks of the current region until none is left: the thread's own share first, then the
   others' in turn. */
static inline void mlcc_pool_work(mlcc_pool *p, mlcc_task_fn fn, void *ctx, int64_t total, int worker) {
  for (int i = 0; i < p->threads; ++i) {
    mlcc_range *r = &p->ranges[(worker + i) % p->threads];
    int64_t t;
    while ((t = atomic_fetch_add(&r->next, 1)) < r->end) {
      fn(ctx, t, worker);
      if (atomic_fetch_add(&p->finished, 1) + 1 == total) {
        pthread_mutex_lock(&p->lock);
        pthread_cond_broadcast(&p->done);
        pthread_mutex_unlock(&p->lock);
      }
    }
  }
}

static void *mlcc_pool_main(void *raw) {
  mlcc_worker_arg arg = *(mlcc_worker_arg *)raw;
  free(raw);
  mlcc_pool *p = arg.pool;
  int_fast64_t seen = 0;
  for (;;) {
    mlcc_spin_while_below(&p->generation, seen + 1); /* generations only grow */
    pthread_mutex_lock(&p->lock);
    while (atomic_load(&p->generation) == seen && !p->shutdown) pthread_cond_wait(&p->wake, &p->lock);
    if (p->shutdown) {
      pthread_mutex_unlock(&p->lock);
      return NULL;
    }
    /* join the region under the lock: the caller resets the counters only while no worker is in one */
    seen = atomic_load(&p->generation);
    ++p->active;
    mlcc_task_fn fn = p->fn;
    void *ctx = p->ctx;
    int64_t total = p->tasks;
    pthread_mutex_unlock(&p->lock);
    mlcc_pool_work(p, fn, ctx, total, arg.index);
    pthread_mutex_lock(&p->lock);
    if (--p->active == 0) pthread_cond_broadcast(&p->done);
    pthread_mutex_unlock(&p->lock);
  }
}

static inline void mlcc_pool_destroy(mlcc_pool *p) {
  if (!p) return;
  pthread_mutex_lock(&p->lock);
  p->shutdown = 1;
  pthread_cond_broadcast(&p->wake);
  pthread_mutex_unlock(&p->lock);
  for (int i = 1; i < p->threads; ++i) pthread_join(p->workers[i - 1], NULL);
  pthread_cond_destroy(&p->wake);
  pthread_cond_destroy(&p->done);
  pthread_mutex_destroy(&p->lock);
  free(p->workers);
  free(p->ranges);
  free(p);
}

/* A pool of `threads` (1 to 256) threads counting the caller, or NULL when out of memory or threads. */
static inline mlcc_pool *mlcc_pool_create(int threads) {
  mlcc_pool *p = (mlcc_pool *)calloc(1, sizeof *p);
  if (!p) return NULL;
  p->workers = (pthread_t *)calloc((size_t)(threads > 1 ? threads - 1 : 1), sizeof(pthread_t));
  p->ranges = (mlcc_range *)aligned_alloc(64, sizeof(mlcc_range) * (size_t)(threads > 1 ? threads : 1));
  if (!p->workers || !p->ranges || pthread_mutex_init(&p->lock, NULL) != 0) {
    free(p->workers);
    free(p->ranges);
    free(p);
    return NULL;
  }
  for (int i = 0; i < (threads > 1 ? threads : 1); ++i) {
    atomic_init(&p->ranges[i].next, 0);
    p->ranges[i].end = 0;
  }
  pthread_cond_init(&p->wake, NULL);
  pthread_cond_init(&p->done, NULL);
  atomic_init(&p->generation, 0);
  atomic_init(&p->finished, 0);
  p->threads = 1;
  for (int i = 1; i < threads; ++i) {
    mlcc_worker_arg *arg = (mlcc_worker_arg *)malloc(sizeof *arg);
    if (!arg) break;
    arg->pool = p;
    arg->index = i;
    if (pthread_create(&p->workers[i - 1], NULL, mlcc_pool_main, arg) != 0) {
      free(arg);
      break;
    }
    p->threads = i + 1;
  }
  if (p->threads != threads) {
    mlcc_pool_destroy(p);
    return NULL;
  }
  return p;
}

/* Run fn(ctx, t, worker) for t in [0, tasks) on the pool and wait for all of them. worker (0 for the
 * caller) tells a task which per-thread scratch it owns. A NULL pool runs the tasks inline. */
static inline void mlcc_pool_run(mlcc_pool *p, int64_t tasks, mlcc_task_fn fn, void *ctx) {
  if (!p || p->threads == 1 || tasks <= 1) {
    for (int64_t t = 0; t < tasks; ++t) fn(ctx, t, 0);
    return;
  }
  pthread_mutex_lock(&p->lock);
  while (p->active > 0) pthread_cond_wait(&p->done, &p->lock); /* stragglers of the last region */
  p->tasks = tasks;
  p->fn = fn;
  p->ctx = ctx;
  atomic_store(&p->finished, 0);
  for (int w = 0; w < p->threads; ++w) { /* thread w's share: tasks [w * tasks / threads, (w + 1) * tasks / threads) */
    p->ranges[w].end = (w + 1) * tasks / p->threads;
    atomic_store(&p->ranges[w].next, w * tasks / p->threads);
  }
  atomic_fetch_add(&p->generation, 1);
  pthread_cond_broadcast(&p->wake);
  pthread_mutex_unlock(&p->lock);
  mlcc_pool_work(p, fn, ctx, tasks, 0);
  if (atomic_load(&p->finished) < tasks) {
    mlcc_spin_while_below(&p->finished, tasks);
    pthread_mutex_lock(&p->lock);
    while (atomic_load(&p->finished) < tasks) pthread_cond_wait(&p->done, &p->lock);
    pthread_mutex_unlock(&p->lock);
  }
}

/* The busiest thread's load (in strip x panel tiles) when `strips` are cut into about b column blocks and
 * `panels` into `chunks` row chunks; the blocks' real count, their strips and the tasks in *blocks, *per, *tasks. */
static inline double mlcc_split_load(int threads, int64_t outer, int64_t strips, int64_t panels, int64_t b,
                                      int64_t chunks, int64_t *blocks, int64_t *per, int64_t *tasks) {
  *per = (strips + b - 1) / b; /* strips per column block */
  *blocks = (strips + *per - 1) / *per;
  *tasks = outer * *blocks * chunks;
  const int64_t tall = (panels + chunks - 1) / chunks; /* panels per row chunk */
  return (double)((*tasks + threads - 1) / threads) * (double)*per * (double)tall;
}

/* How a tiled kernel splits into tasks for `threads` threads: `outer` independent parts (images x groups),
 * each `strips` strips of nr columns wide and `panels` row panels tall. Comes in with the cache-sized
 * split (*col_blocks blocks of *nc columns, *row_chunks = 1). Chooses the column blocks and row chunks that
 * load the busiest thread least, counting a thread's load as its share of tasks, rounded up, times the
 * largest task (tasks are taken in turn, so unequal ones do not even out); of splits within 5% of the best,
 * the fewest row chunks (each packs its column block's patches again, where the kernel packs), then the
 * fewest tasks. Cutting columns only, 3 strips went 2 + 1 to 2 threads: mobilenet_v2's 576 -> 96 channel
 * convolution at 14x14 (3 strips of 32 channels, 28 panels of 7 pixels) ran 1.5x faster at 2 threads than
 * at 1 (0.129 ms), and now splits into 3 strips x 14 panels per thread (0.103-0.127 ms); 96 -> 576 at 14x14
 * (7 strips of 32 pixels, the last of 4; 72 panels of 8 channels) 0.150 -> 0.112 ms. */
static inline void mlcc_split(int threads, int64_t outer, int64_t strips, int64_t nr, int64_t panels,
                              int64_t *col_blocks, int64_t *nc, int64_t *row_chunks) {
  if (threads <= 1) return;
  const int64_t b_lo = *col_blocks, b_hi = *col_blocks + 4 * threads, chunks_hi = 4 * threads;
  int64_t blocks, per, tasks;
  double best = 1e300; /* the lowest load of any split */
  for (int64_t chunks = 1; chunks <= panels && chunks <= chunks_hi; ++chunks)
    for (int64_t b = b_lo; b <= strips && b <= b_hi; ++b) {
      const double load = mlcc_split_load(threads, outer, strips, panels, b, chunks, &blocks, &per, &tasks);
      if (load < best) best = load;
    }
  /* of the splits within 5% of it, those of the fewest row chunks, and of those the one of the fewest tasks */
  int64_t best_tasks = -1;
  for (int64_t chunks = 1; chunks <= panels && chunks <= chunks_hi && best_tasks < 0; ++chunks)
    for (int64_t b = b_lo; b <= strips && b <= b_hi; ++b) {
      const double load = mlcc_split_load(threads, outer, strips, panels, b, chunks, &blocks, &per, &tasks);
      if (load <= best * 1.05 && (best_tasks < 0 || tasks < best_tasks)) {
        best_tasks = tasks;
        *col_blocks = blocks;
        *nc = per * nr;
        *row_chunks = chunks;
      }
    }
}

/* What a threaded kernel gets: the pool (NULL with one thread) and `threads` scratch areas of
 * `scratch_floats` floats each, one per worker. Owned by the model instance, made at create time. */
typedef struct mlcc_exec {
  mlcc_pool *pool;
  int threads;
  float *scratch;
  int64_t scratch_floats;
} mlcc_exec;
