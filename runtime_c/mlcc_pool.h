/* mlcc thread pool: a fixed set of pthreads that run the tasks of one parallel kernel at a time.
 *
 * Included by a generated C model (static functions only: every model instance owns its own pool, two
 * models in one process share nothing). The thread that calls mlcc_pool_run works too, so a pool of N
 * threads starts N - 1 workers; with N = 1 there are no workers and tasks run inline, in order.
 * Workers spin for a short while after a parallel region (the next kernel usually follows within
 * microseconds) and then sleep on a condition variable, so an idle model costs no CPU. */
#include <pthread.h>
#include <stdatomic.h>

typedef void (*mlcc_task_fn)(void *ctx, int64_t task, int worker);

typedef struct mlcc_pool {
  int threads;                  /* workers + the calling thread */
  pthread_t *workers;
  pthread_mutex_t lock;
  pthread_cond_t wake;          /* a new region, or shutdown */
  pthread_cond_t done;          /* the last task of a region finished */
  atomic_uint_fast64_t generation; /* bumped once per region */
  atomic_int_fast64_t next;     /* next task to take */
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

/* Take and run tasks of the current region until none is left. */
static inline void mlcc_pool_work(mlcc_pool *p, mlcc_task_fn fn, void *ctx, int64_t total, int worker) {
  int64_t t;
  while ((t = atomic_fetch_add(&p->next, 1)) < total) {
    fn(ctx, t, worker);
    if (atomic_fetch_add(&p->finished, 1) + 1 == total) {
      pthread_mutex_lock(&p->lock);
      pthread_cond_broadcast(&p->done);
      pthread_mutex_unlock(&p->lock);
    }
  }
}

static void *mlcc_pool_main(void *raw) {
  mlcc_worker_arg arg = *(mlcc_worker_arg *)raw;
  free(raw);
  mlcc_pool *p = arg.pool;
  uint_fast64_t seen = 0;
  for (;;) {
    int spins = 0;
    while (atomic_load(&p->generation) == seen && ++spins < 20000) {
    }
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
  free(p);
}

/* A pool of `threads` (1 to 256) threads counting the caller, or NULL when out of memory or threads. */
static inline mlcc_pool *mlcc_pool_create(int threads) {
  mlcc_pool *p = (mlcc_pool *)calloc(1, sizeof *p);
  if (!p) return NULL;
  p->workers = (pthread_t *)calloc((size_t)(threads > 1 ? threads - 1 : 1), sizeof(pthread_t));
  if (!p->workers || pthread_mutex_init(&p->lock, NULL) != 0) {
    free(p->workers);
    free(p);
    return NULL;
  }
  pthread_cond_init(&p->wake, NULL);
  pthread_cond_init(&p->done, NULL);
  atomic_init(&p->generation, 0);
  atomic_init(&p->next, 0);
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
  atomic_store(&p->next, 0);
  atomic_fetch_add(&p->generation, 1);
  pthread_cond_broadcast(&p->wake);
  pthread_mutex_unlock(&p->lock);
  mlcc_pool_work(p, fn, ctx, tasks, 0);
  if (atomic_load(&p->finished) < tasks) {
    int spins = 0;
    while (atomic_load(&p->finished) < tasks && ++spins < 200000) {
    }
    pthread_mutex_lock(&p->lock);
    while (atomic_load(&p->finished) < tasks) pthread_cond_wait(&p->done, &p->lock);
    pthread_mutex_unlock(&p->lock);
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
