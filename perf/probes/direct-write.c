// Two facts about direct writes on the data directory's filesystem that shape Spindle's
// write path (perf/README.md, 2026-12-04). Not part of the build; compile and run by hand:
//
//   gcc -O2 -o /tmp/direct-write perf/probes/direct-write.c && /tmp/direct-write DIR
//
// 1. nowait: how many 16 KiB direct writes the kernel takes without blocking (RWF_NOWAIT,
//    the attempt io_uring makes inline before it hands a write to a worker thread), for
//    disjoint writes into fallocated blocks and for writes that each rewrite the previous
//    write's last block, as Spindle's partial-block writes do.
// 2. sync: CPU and wall time of a 16 KiB direct write plus fdatasync, appending to a file
//    that grows, into fallocated (unwritten) blocks, and into blocks written before.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

enum { BLOCK = 4096, WRITE = 16384, COUNT = 2000 };

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

static double cpu(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec + 1e-6 * (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

static int open_new(const char *path) {
  unlink(path);
  int fd = open(path, O_CREAT | O_RDWR | O_DIRECT, 0644);
  if (fd < 0) { perror(path); exit(1); }
  return fd;
}

static void nowait(const char *path, void *buf, int overlap) {
  int fd = open_new(path);
  if (fallocate(fd, 0, 0, (off_t)(COUNT + 1) * WRITE) != 0) { perror("fallocate"); exit(1); }
  int refused = 0;
  off_t pos = 0;
  for (int i = 0; i < COUNT; i++) {
    struct iovec v = {buf, WRITE};
    if (pwritev2(fd, &v, 1, pos, RWF_NOWAIT) < 0) {
      if (errno != EAGAIN) { perror("pwritev2"); exit(1); }
      refused++;
      if (pwrite(fd, buf, WRITE, pos) != WRITE) { perror("pwrite"); exit(1); }
    }
    pos += WRITE - (overlap ? BLOCK : 0);
  }
  printf("nowait, %s: %d of %d refused\n",
         overlap ? "each write rewrites the last block before it" : "disjoint writes", refused, COUNT);
  close(fd);
  unlink(path);
}

static void sync_cost(const char *path, void *buf, int mode) {
  static const char *names[] = {"growing file", "fallocated blocks", "blocks written before"};
  int fd = open_new(path);
  if (mode == 1) fallocate(fd, 0, 0, (off_t)COUNT * WRITE);
  if (mode == 2) {
    for (int i = 0; i < COUNT; i++) pwrite(fd, buf, WRITE, (off_t)i * WRITE);
    fdatasync(fd);
  }
  double cpu0 = cpu(), t0 = now();
  for (int i = 0; i < COUNT; i++) {
    if (pwrite(fd, buf, WRITE, (off_t)i * WRITE) != WRITE || fdatasync(fd) != 0) { perror("write"); exit(1); }
  }
  printf("write+fdatasync, %s: %.0f us wall, %.0f us CPU each\n", names[mode],
         (now() - t0) / COUNT * 1e6, (cpu() - cpu0) / COUNT * 1e6);
  close(fd);
  unlink(path);
}

int main(int argc, char **argv) {
  if (argc != 2) { fprintf(stderr, "usage: %s DIR\n", argv[0]); return 2; }
  char path[4096];
  snprintf(path, sizeof path, "%s/direct-write-probe.dat", argv[1]);
  void *buf;
  if (posix_memalign(&buf, BLOCK, WRITE) != 0) return 1;
  memset(buf, 'a', WRITE);
  nowait(path, buf, 0);
  nowait(path, buf, 1);
  for (int mode = 0; mode < 3; mode++) sync_cost(path, buf, mode);
  return 0;
}
