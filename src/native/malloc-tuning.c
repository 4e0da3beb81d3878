/*
 * glibc malloc tuning for registry-mirror's uploads. Every body chunk Node hands JavaScript (from
 * the HTTP parser for a request, from a socket read for undici) is a fresh 64 KiB malloc, and
 * V8 frees them in batches of tens of MiB when a garbage collection runs, prompted by that very
 * external memory. Those batches sit at the top of the heap, so glibc's default trim threshold
 * (128 KiB, raised only by freeing mmap()ed chunks) gives them back to the kernel with brk(2)
 * after every collection, and the next batch faults every page in again: 130,000 to 200,000 page
 * faults per GiB pushed, a quarter to a third of the CPU of a 1 GiB push on the benchmark machine
 * (docs/benchmarks.md, "Where a push's CPU goes"). A trim threshold above one batch keeps those
 * pages for the next one; trim() gives them back once the streaming is over (http/body-heap.ts
 * decides when). Node-API, so one build serves every Node version.
 */
/* Node-API 8: Node 12.22 and later, every Node this package supports. */
#define NAPI_VERSION 8
#include <node_api.h>
#include <stdbool.h>
#include <stdint.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

/*
 * setTrimThreshold(bytes) -> boolean: whether the C library took it (false off glibc: musl's
 * malloc has no such setting). Setting it also fixes the mmap threshold at its default, as
 * mallopt(3) documents; a batch of 64 KiB bodies is below it either way.
 */
static napi_value set_trim_threshold(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_value result;
  int64_t bytes = 0;
  bool applied = false;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 ||
      napi_get_value_int64(env, argv[0], &bytes) != napi_ok || bytes < 0 || bytes > INT32_MAX) {
    napi_throw_range_error(env, "ERR_MALLOC_TUNING", "setTrimThreshold(bytes): expected a byte count from 0 to 2^31-1");
    return NULL;
  }
#ifdef __GLIBC__
  applied = mallopt(M_TRIM_THRESHOLD, (int)bytes) == 1;
#endif
  if (napi_get_boolean(env, applied, &result) != napi_ok) return NULL;
  return result;
}

/* trim() -> boolean: malloc_trim(0), the heap's free memory back to the kernel; whether any was. */
static napi_value trim(napi_env env, napi_callback_info info) {
  napi_value result;
  bool released = false;
#ifdef __GLIBC__
  released = malloc_trim(0) == 1;
#endif
  if (napi_get_boolean(env, released, &result) != napi_ok) return NULL;
  return result;
}

static bool export_function(napi_env env, napi_value exports, const char *name, napi_callback callback) {
  napi_value fn;
  return napi_create_function(env, name, NAPI_AUTO_LENGTH, callback, NULL, &fn) == napi_ok &&
         napi_set_named_property(env, exports, name, fn) == napi_ok;
}

NAPI_MODULE_INIT() {
  /* glibc: whether the two functions do anything here. */
  napi_value glibc;
#ifdef __GLIBC__
  if (napi_get_boolean(env, true, &glibc) != napi_ok) return NULL;
#else
  if (napi_get_boolean(env, false, &glibc) != napi_ok) return NULL;
#endif
  if (napi_set_named_property(env, exports, "glibc", glibc) != napi_ok) return NULL;
  if (!export_function(env, exports, "setTrimThreshold", set_trim_threshold)) return NULL;
  if (!export_function(env, exports, "trim", trim)) return NULL;
  return exports;
}
