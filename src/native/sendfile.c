/*
 * sendfile(2) for registry-mirror's warm blob path: the kernel moves page-cache pages to the
 * socket, so a cached blob never passes through user space (Node has no sendfile for sockets;
 * its own file -> socket copy costs two memcpy per byte). Linux only; Node-API, so one build
 * serves every Node version.
 *
 * A response that has to wait for its socket, or for the disk, opens a Transfer. It holds its own
 * dup() of the socket's descriptor, so work on a thread-pool thread can never write to a
 * descriptor number that Node closed and reused meanwhile, and so a uv_poll can watch the socket
 * without touching the watcher libuv keeps for Node's own handle (epoll registers descriptor
 * numbers, and two numbers may name one socket).
 *
 * Sending never blocks the event loop on the socket (it is non-blocking: a full send buffer ends a
 * send early, and waitWritable resumes it) nor on the disk: sendResident sends on the loop only
 * what cachestat(2) (or mincore(2) before Linux 6.5) reports in the page cache, and send() runs
 * the other case on the thread pool, where reading from disk may block.
 */
#define _GNU_SOURCE
/* Node-API 8: Node 12.22 and later, every Node this package supports. */
#define NAPI_VERSION 8
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <node_api.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <uv.h>

/* The most one sendResident call sends (and probes with mincore). Loopback and LAN send buffers
 * take a few MiB at most, so a larger window would only probe pages that are not sent yet. */
#define WINDOW_BYTES (4 * 1024 * 1024)
/* Not an errno: sendResident's answer when part of the window has to come from disk. */
#define NOT_RESIDENT (-100000)

typedef struct {
  uv_poll_t poll;
  int socket_fd;           /* our dup(), closed once the poll handle is closed */
  int closed;              /* close() was called; freed when nothing is in flight */
  int sends_in_flight;     /* thread-pool sends still using socket_fd */
  napi_env env;
  napi_ref on_writable;    /* callback of the current waitWritable, if any */
  napi_async_context async_context;
} transfer_t;

/* What JavaScript holds: outlives the transfer, so a late call finds NULL rather than freed memory. */
typedef struct {
  transfer_t *transfer;
} transfer_box_t;

typedef struct {
  napi_async_work work;
  napi_ref callback;
  transfer_t *transfer;
  int file_fd;
  off_t offset;
  size_t count;
  int64_t sent;
  int error;
} send_job_t;

#define CHECK(env, call)                                                         \
  do {                                                                           \
    if ((call) != napi_ok) {                                                     \
      napi_throw_error((env), "ERR_SENDFILE_NAPI", "Node-API call failed: " #call); \
      return NULL;                                                               \
    }                                                                            \
  } while (0)

/* Sends up to `count` bytes; stops early on a full socket (EAGAIN), which is not an error. */
static int64_t send_until_blocked(int socket_fd, int file_fd, off_t *offset, size_t count, int *error) {
  int64_t sent = 0;
  *error = 0;
  while ((size_t)sent < count) {
    ssize_t n = sendfile(socket_fd, file_fd, offset, count - (size_t)sent);
    if (n > 0) {
      sent += n;
      continue;
    }
    if (n == 0) {
      *error = ENODATA; /* the file ended before the range did */
      break;
    }
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) *error = errno;
    break;
  }
  return sent;
}

/* cachestat(2), Linux 6.5: counts the cached pages of a file range without mapping it. The
 * number is the same on every architecture (the unified syscall table); older kernels answer
 * ENOSYS and mincore(2) is used instead. */
#ifndef __NR_cachestat
#define __NR_cachestat 451
#endif
struct cachestat_range_arg {
  uint64_t off;
  uint64_t len;
};
struct cachestat_result {
  uint64_t nr_cache;
  uint64_t nr_dirty;
  uint64_t nr_writeback;
  uint64_t nr_evicted;
  uint64_t nr_recently_evicted;
};
static int cachestat_missing = 0;

static long page_size(void) {
  static long size = 0;
  if (size == 0) size = sysconf(_SC_PAGESIZE);
  return size;
}

/* 1, 0, or -1 when the kernel has no cachestat. */
static int resident_by_cachestat(int file_fd, off_t start, size_t span) {
  struct cachestat_range_arg range = { (uint64_t)start, (uint64_t)span };
  struct cachestat_result result;
  if (syscall(__NR_cachestat, file_fd, &range, &result, 0) != 0) {
    /* ENOSYS: before 6.5; EPERM: a seccomp filter (a container runtime's) that does not know it. */
    if (errno == ENOSYS || errno == EPERM) cachestat_missing = 1;
    return -1;
  }
  return result.nr_cache >= (span + (size_t)page_size() - 1) / (size_t)page_size();
}

/* mincore(2) on a mapping that is never touched: costs an mmap and an munmap per call. */
static int resident_by_mincore(int file_fd, off_t start, size_t span) {
  void *map = mmap(NULL, span, PROT_READ, MAP_SHARED, file_fd, start);
  if (map == MAP_FAILED) return -1;
  unsigned char pages[WINDOW_BYTES / 4096 + 2];
  size_t page_count = (span + (size_t)page_size() - 1) / (size_t)page_size();
  int resident = mincore(map, span, pages) == 0 ? 1 : -1;
  for (size_t i = 0; resident == 1 && i < page_count; i++) {
    if (!(pages[i] & 1)) resident = 0;
  }
  munmap(map, span);
  return resident;
}

/* Whether every page of [offset, offset + length) is in the page cache (1), or not or unknown (0). */
static int range_is_resident(int file_fd, off_t offset, size_t length) {
  off_t start = offset - (offset % page_size());
  size_t span = (size_t)(offset - start) + length;
  if (!cachestat_missing) {
    int resident = resident_by_cachestat(file_fd, start, span);
    if (resident >= 0 || !cachestat_missing) return resident == 1;
  }
  return resident_by_mincore(file_fd, start, span) == 1;
}

static transfer_t *transfer_of(napi_env env, napi_value value) {
  transfer_box_t *box = NULL;
  if (napi_get_value_external(env, value, (void **)&box) != napi_ok || box == NULL || box->transfer == NULL) {
    napi_throw_error(env, "ERR_SENDFILE_CLOSED", "sendfile transfer is closed");
    return NULL;
  }
  return box->transfer;
}

static void on_poll_closed(uv_handle_t *handle) {
  transfer_t *transfer = (transfer_t *)handle->data;
  close(transfer->socket_fd);
  free(transfer);
}

static void release_transfer_if_idle(transfer_t *transfer) {
  if (!transfer->closed || transfer->sends_in_flight > 0) return;
  napi_async_destroy(transfer->env, transfer->async_context);
  uv_close((uv_handle_t *)&transfer->poll, on_poll_closed);
}

static void close_transfer(transfer_t *transfer) {
  if (transfer->closed) return;
  transfer->closed = 1;
  uv_poll_stop(&transfer->poll);
  if (transfer->on_writable != NULL) {
    napi_delete_reference(transfer->env, transfer->on_writable);
    transfer->on_writable = NULL;
  }
  release_transfer_if_idle(transfer);
}

/* A transfer JavaScript dropped without close(): close it now. */
static void finalize_box(napi_env env, void *data, void *hint) {
  transfer_box_t *box = (transfer_box_t *)data;
  if (box->transfer != NULL) close_transfer(box->transfer);
  free(box);
}

/* open(socketFd) -> transfer */
static napi_value js_open(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int32_t fd;
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  CHECK(env, napi_get_value_int32(env, argv[0], &fd));
  uv_loop_t *loop;
  CHECK(env, napi_get_uv_event_loop(env, &loop));
  int own_fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (own_fd < 0) {
    napi_throw_error(env, "ERR_SENDFILE_DUP", "cannot duplicate the socket descriptor");
    return NULL;
  }
  transfer_t *transfer = calloc(1, sizeof *transfer);
  transfer_box_t *box = calloc(1, sizeof *box);
  if (transfer == NULL || box == NULL || uv_poll_init(loop, &transfer->poll, own_fd) != 0) {
    close(own_fd);
    free(transfer);
    free(box);
    napi_throw_error(env, "ERR_SENDFILE_POLL", "cannot watch the socket");
    return NULL;
  }
  transfer->socket_fd = own_fd;
  transfer->env = env;
  transfer->poll.data = transfer;
  box->transfer = transfer;
  napi_value name, result;
  CHECK(env, napi_create_string_utf8(env, "RegistryMirrorSendfile", NAPI_AUTO_LENGTH, &name));
  CHECK(env, napi_async_init(env, NULL, name, &transfer->async_context));
  CHECK(env, napi_create_external(env, box, finalize_box, NULL, &result));
  return result;
}

/* The (fileFd, offset, count) arguments both send functions take; false after throwing. */
static bool file_range_args(napi_env env, napi_value *argv, int32_t *file_fd, int64_t *offset, int64_t *count) {
  if (napi_get_value_int32(env, argv[0], file_fd) != napi_ok || napi_get_value_int64(env, argv[1], offset) != napi_ok ||
      napi_get_value_int64(env, argv[2], count) != napi_ok) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "fileFd, offset and count must be numbers");
    return false;
  }
  if (*offset < 0 || *count < 0) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "offset and count must not be negative");
    return false;
  }
  return true;
}

/* sendResident(socketFd, fileFd, offset, count) -> bytes sent, 0..count (< count: the socket is
 * full), NOT_RESIDENT (nothing sent: some of the window is not in the page cache), or -errno.
 * Synchronous, so it may use Node's own descriptor: Node cannot close it meanwhile. */
static napi_value js_send_resident(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4], result;
  int32_t socket_fd, file_fd;
  int64_t offset, count;
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  CHECK(env, napi_get_value_int32(env, argv[0], &socket_fd));
  if (!file_range_args(env, argv + 1, &file_fd, &offset, &count)) return NULL;
  size_t window = count < WINDOW_BYTES ? (size_t)count : WINDOW_BYTES;
  int64_t answer;
  if (!range_is_resident(file_fd, (off_t)offset, window)) {
    answer = NOT_RESIDENT;
  } else {
    off_t position = (off_t)offset;
    int error;
    int64_t sent = send_until_blocked(socket_fd, file_fd, &position, window, &error);
    answer = error != 0 && sent == 0 ? -error : sent;
  }
  CHECK(env, napi_create_int64(env, answer, &result));
  return result;
}

static void run_send_job(napi_env env, void *data) {
  send_job_t *job = (send_job_t *)data;
  job->sent = send_until_blocked(job->transfer->socket_fd, job->file_fd, &job->offset, job->count, &job->error);
}

static void finish_send_job(napi_env env, napi_status status, void *data) {
  send_job_t *job = (send_job_t *)data;
  transfer_t *transfer = job->transfer;
  napi_value callback, global, args[2];
  napi_get_reference_value(env, job->callback, &callback);
  napi_get_global(env, &global);
  napi_create_int64(env, job->sent, &args[0]);
  napi_create_int32(env, status == napi_ok ? job->error : ECANCELED, &args[1]);
  napi_delete_reference(env, job->callback);
  napi_delete_async_work(env, job->work);
  free(job);
  transfer->sends_in_flight--;
  release_transfer_if_idle(transfer);
  napi_call_function(env, global, callback, 2, args, NULL);
}

/* send(transfer, fileFd, offset, count, callback(sent, errno)) on the thread pool: for ranges
 * that may need disk reads. errno 0 with sent < count means the socket is full. */
static napi_value js_send(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5], name;
  int32_t file_fd;
  int64_t offset, count;
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  transfer_t *transfer = transfer_of(env, argv[0]);
  if (transfer == NULL) return NULL;
  if (!file_range_args(env, argv + 1, &file_fd, &offset, &count)) return NULL;
  send_job_t *job = calloc(1, sizeof *job);
  if (job == NULL) {
    napi_throw_error(env, "ERR_SENDFILE_MEMORY", "out of memory");
    return NULL;
  }
  job->transfer = transfer;
  job->file_fd = file_fd;
  job->offset = (off_t)offset;
  job->count = (size_t)count;
  CHECK(env, napi_create_reference(env, argv[4], 1, &job->callback));
  CHECK(env, napi_create_string_utf8(env, "RegistryMirrorSendfile", NAPI_AUTO_LENGTH, &name));
  CHECK(env, napi_create_async_work(env, NULL, name, run_send_job, finish_send_job, job, &job->work));
  CHECK(env, napi_queue_async_work(env, job->work));
  transfer->sends_in_flight++;
  return NULL;
}

static void on_writable(uv_poll_t *poll, int status, int events) {
  transfer_t *transfer = (transfer_t *)poll->data;
  uv_poll_stop(poll);
  napi_ref reference = transfer->on_writable;
  transfer->on_writable = NULL;
  if (reference == NULL) return;
  napi_env env = transfer->env;
  napi_handle_scope scope;
  napi_value callback, receiver, arg;
  napi_open_handle_scope(env, &scope);
  napi_get_reference_value(env, reference, &callback);
  napi_delete_reference(env, reference);
  napi_get_global(env, &receiver);
  napi_create_int32(env, status < 0 ? -status : 0, &arg);
  /* make_callback, not call_function: runs process.nextTick and promise jobs queued by the callback. */
  napi_make_callback(env, transfer->async_context, receiver, callback, 1, &arg, NULL);
  napi_close_handle_scope(env, scope);
}

/* waitWritable(transfer, callback(errno)): once, when the socket takes more bytes (or fails). */
static napi_value js_wait_writable(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  transfer_t *transfer = transfer_of(env, argv[0]);
  if (transfer == NULL) return NULL;
  if (transfer->on_writable != NULL) {
    napi_throw_error(env, "ERR_SENDFILE_BUSY", "already waiting for the socket");
    return NULL;
  }
  CHECK(env, napi_create_reference(env, argv[1], 1, &transfer->on_writable));
  if (uv_poll_start(&transfer->poll, UV_WRITABLE, on_writable) != 0) {
    napi_delete_reference(env, transfer->on_writable);
    transfer->on_writable = NULL;
    napi_throw_error(env, "ERR_SENDFILE_POLL", "cannot watch the socket");
  }
  return NULL;
}

/* close(transfer): stops waiting; the descriptor is closed once no send is in flight. */
static napi_value js_close(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  transfer_box_t *box = NULL;
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  CHECK(env, napi_get_value_external(env, argv[0], (void **)&box));
  if (box != NULL && box->transfer != NULL) {
    close_transfer(box->transfer);
    box->transfer = NULL;
  }
  return NULL;
}

/* cork(socketFd, on) -> 0 or -errno. TCP_CORK (tcp(7)): while set, the kernel sends only full
 * segments, so a response's head and the pages sendfile appends go out together in segments as
 * large as the path allows, as nginx's `tcp_nopush` does; clearing it sends what is left at once.
 * Synchronous, on Node's own descriptor, read in the same tick (plainSocketFd). */
static napi_value js_cork(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], result;
  int32_t socket_fd;
  bool on;
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (napi_get_value_int32(env, argv[0], &socket_fd) != napi_ok || napi_get_value_bool(env, argv[1], &on) != napi_ok) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "socketFd must be a number and on a boolean");
    return NULL;
  }
  int value = on ? 1 : 0;
  int answer = setsockopt(socket_fd, IPPROTO_TCP, TCP_CORK, &value, sizeof value) == 0 ? 0 : -errno;
  CHECK(env, napi_create_int32(env, answer, &result));
  return result;
}

NAPI_MODULE_INIT() {
  /* Forces the mincore(2) fallback, as on kernels before 6.5: for its tests. */
  const char *residency = getenv("REGISTRY_MIRROR_SENDFILE_RESIDENCY");
  if (residency != NULL && strcmp(residency, "mincore") == 0) cachestat_missing = 1;
  napi_property_descriptor properties[] = {
    { "open", NULL, js_open, NULL, NULL, NULL, napi_enumerable, NULL },
    { "sendResident", NULL, js_send_resident, NULL, NULL, NULL, napi_enumerable, NULL },
    { "send", NULL, js_send, NULL, NULL, NULL, napi_enumerable, NULL },
    { "waitWritable", NULL, js_wait_writable, NULL, NULL, NULL, napi_enumerable, NULL },
    { "close", NULL, js_close, NULL, NULL, NULL, napi_enumerable, NULL },
    { "cork", NULL, js_cork, NULL, NULL, NULL, napi_enumerable, NULL },
  };
  napi_value window, not_resident;
  if (napi_create_int32(env, WINDOW_BYTES, &window) != napi_ok) return NULL;
  if (napi_create_int32(env, NOT_RESIDENT, &not_resident) != napi_ok) return NULL;
  if (napi_define_properties(env, exports, sizeof properties / sizeof properties[0], properties) != napi_ok) return NULL;
  if (napi_set_named_property(env, exports, "WINDOW_BYTES", window) != napi_ok) return NULL;
  if (napi_set_named_property(env, exports, "NOT_RESIDENT", not_resident) != napi_ok) return NULL;
  return exports;
}
