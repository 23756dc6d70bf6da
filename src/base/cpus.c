#define _GNU_SOURCE /* sched_getaffinity, CPU_COUNT */
#include "base/cpus.h"

#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Reads the first line of `path` into line[size] (without its newline); false if it cannot. */
static bool read_line(const char *path, char *line, size_t size) {
    FILE *f = fopen(path, "r");
    bool ok = f && fgets(line, (int)size, f);
    if (f) fclose(f);
    if (ok) line[strcspn(line, "\n")] = 0;
    return ok;
}

/* The tighter of two CPU counts (0: no limit). */
static int tighter(int a, int b) { return a > 0 && (b == 0 || a < b) ? a : b; }

/* CPUs for `quota` microseconds of CPU time a `period`, rounded up; 0 for none. */
static int quota_cpus(long long quota, long long period) {
    if (quota <= 0 || period <= 0) return 0;
    long long n = (quota + period - 1) / period;
    return n > 4096 ? 4096 : (int)n;
}

/* The quota of the cgroup directory `dir` (v2: cpu.max; v1: cpu.cfs_quota_us / cpu.cfs_period_us). */
static int dir_limit(const char *dir, bool v2) {
    char path[4200], line[128];
    long long quota = 0, period = 0;
    if (v2) {
        snprintf(path, sizeof path, "%s/cpu.max", dir);
        if (!read_line(path, line, sizeof line) || sscanf(line, "%lld %lld", &quota, &period) != 2) return 0; /* "max ..." too */
        return quota_cpus(quota, period);
    }
    snprintf(path, sizeof path, "%s/cpu.cfs_quota_us", dir);
    if (!read_line(path, line, sizeof line) || sscanf(line, "%lld", &quota) != 1) return 0;
    snprintf(path, sizeof path, "%s/cpu.cfs_period_us", dir);
    if (!read_line(path, line, sizeof line) || sscanf(line, "%lld", &period) != 1) return 0;
    return quota_cpus(quota, period);
}

/* The tightest quota of `mount` + `cgroup` and the directories above it, up to `mount` itself. */
static int path_limit(const char *mount, const char *cgroup, bool v2) {
    char dir[4096];
    size_t base = strlen(mount);
    int n = snprintf(dir, sizeof dir, "%s%s", mount, cgroup);
    if (n < 0 || (size_t)n >= sizeof dir) return 0;
    int best = 0;
    for (;;) { /* "ROOT/a/b", "ROOT/a", "ROOT" */
        best = tighter(dir_limit(dir, v2), best);
        char *slash = strrchr(dir + base, '/');
        if (!slash) return best;
        *slash = 0;
    }
}

/* The quota that one line of /proc/self/cgroup ("ID:CONTROLLERS:PATH", changed in place) points
 * at: cgroup v2's "0::PATH", or a v1 line whose controllers include cpu (mounted by that name, or
 * as "cpu" where several share the line, "cpu,cpuacct"). */
static int line_limit(char *entry, const char *root) {
    char *c1 = strchr(entry, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
    if (!c2) return 0;
    *c1 = *c2 = 0;
    const char *controllers = c1 + 1, *path = c2 + 1;
    if (!strcmp(entry, "0") && !*controllers) return path_limit(root, path, true);
    char list[256], mount[4096];
    snprintf(list, sizeof list, "%s", controllers);
    bool cpu = false;
    for (char *save, *tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) cpu |= !strcmp(tok, "cpu");
    if (!cpu) return 0;
    snprintf(mount, sizeof mount, "%s/%s", root, controllers);
    if (access(mount, F_OK) != 0) snprintf(mount, sizeof mount, "%s/cpu", root);
    return path_limit(mount, path, false);
}

int cpus_cgroup_limit(const char *self_cgroup, const char *root) {
    if (!self_cgroup || !root) return 0;
    int best = 0;
    for (const char *line = self_cgroup; *line;) {
        size_t len = strcspn(line, "\n");
        char entry[4096];
        if (len < sizeof entry) {
            memcpy(entry, line, len);
            entry[len] = 0;
            best = tighter(line_limit(entry, root), best);
        }
        line += len + (line[len] == '\n');
    }
    return best;
}

#if defined(__linux__)
/* The quota of this process's cgroups, read from /proc/self/cgroup and /sys/fs/cgroup. */
static int own_cgroup_limit(void) {
    char text[8192];
    FILE *f = fopen("/proc/self/cgroup", "r");
    if (!f) return 0;
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = 0;
    return cpus_cgroup_limit(text, "/sys/fs/cgroup");
}

/* The affinity mask's CPUs into *set; false where it cannot be read. */
static bool affinity(cpu_set_t *set) { return sched_getaffinity(0, sizeof *set, set) == 0 && CPU_COUNT(set) > 0; }
#endif

static int online_cpus(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

int cpus_allowed(void) {
#if defined(__linux__)
    cpu_set_t set;
    return tighter(own_cgroup_limit(), affinity(&set) ? CPU_COUNT(&set) : online_cpus());
#else
    return online_cpus();
#endif
}

int cpus_default_threads(void) {
#if defined(__linux__)
    cpu_set_t set;
    if (!affinity(&set)) return tighter(own_cgroup_limit(), online_cpus());
    /* CPUs whose topology names the same set of hardware threads are one core */
    enum { MAX_CORES = 1024 };
    static const char SIBLINGS[] = "/sys/devices/system/cpu/cpu%d/topology/thread_siblings_list";
    char(*seen)[64] = malloc(MAX_CORES * sizeof *seen);
    int cores = 0;
    for (int cpu = 0; seen && cpu < CPU_SETSIZE && cores < MAX_CORES; cpu++) {
        if (!CPU_ISSET(cpu, &set)) continue;
        char path[96], line[64];
        snprintf(path, sizeof path, SIBLINGS, cpu);
        if (!read_line(path, line, sizeof line)) snprintf(line, sizeof line, "cpu %d", cpu); /* unknown: a core of its own */
        int k = 0;
        while (k < cores && strcmp(seen[k], line)) k++;
        if (k == cores) memcpy(seen[cores++], line, sizeof line);
    }
    free(seen);
    return tighter(own_cgroup_limit(), cores > 0 ? cores : CPU_COUNT(&set));
#else
    return online_cpus();
#endif
}
