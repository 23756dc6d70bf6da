/* How many CPUs the process may use: the default thread count follows the affinity mask (one
 * allowed CPU: one thread; a pool made then has one thread), and cgroup CPU quotas are read from
 * v2's cpu.max and v1's cfs files along the process's cgroup path, in a fake tree here. */
#define _GNU_SOURCE /* sched_setaffinity */
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/cpus.h"
#include "base/threads.h"
#include "harness.h"

/* Writes `text` to root/rel, making its directories. */
static void put(const char *root, const char *rel, const char *text) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", root, rel);
    for (char *p = path + strlen(root) + 1; (p = strchr(p, '/')); p++) {
        *p = 0;
        mkdir(path, 0700);
        *p = '/';
    }
    FILE *f = fopen(path, "w");
    REQUIRE(f, "cannot write %s", path);
    fputs(text, f);
    fclose(f);
}

static void test_cgroup_limits(void) {
    char root[] = "/tmp/qwenc-test-cpus-XXXXXX";
    REQUIRE(mkdtemp(root), "mkdtemp");
    /* cgroup v2: the tightest quota along the path wins, rounded up; "max" is none */
    put(root, "cpu.max", "max 100000\n");
    put(root, "pod/cpu.max", "250000 100000\n");
    put(root, "pod/ctr/cpu.max", "max 100000\n");
    CHECK(cpus_cgroup_limit("0::/pod/ctr\n", root) == 3, "v2: 2.5 CPUs above the container: %d", cpus_cgroup_limit("0::/pod/ctr\n", root));
    CHECK(cpus_cgroup_limit("0::/\n", root) == 0, "v2: no quota at the root: %d", cpus_cgroup_limit("0::/\n", root));
    put(root, "pod/ctr/cpu.max", "50000 100000\n");
    CHECK(cpus_cgroup_limit("0::/pod/ctr", root) == 1, "v2: half a CPU: %d", cpus_cgroup_limit("0::/pod/ctr", root));
    CHECK(cpus_cgroup_limit("0::/elsewhere\n", root) == 0, "v2: a cgroup without files: %d", cpus_cgroup_limit("0::/elsewhere\n", root));
    put(root, "cpu.max", "200000 100000\n"); /* a namespaced container sees its own limits at the root */
    CHECK(cpus_cgroup_limit("0::/\n", root) == 2, "v2: a quota at the root: %d", cpus_cgroup_limit("0::/\n", root));
    /* cgroup v1: the cpu controller's line, mounted alone or with cpuacct; -1 is none */
    const char *v1 = "12:memory:/docker/abc\n4:cpu,cpuacct:/docker/abc\n1:name=systemd:/docker/abc\n";
    put(root, "cpu,cpuacct/docker/abc/cpu.cfs_quota_us", "-1\n");
    put(root, "cpu,cpuacct/docker/abc/cpu.cfs_period_us", "100000\n");
    put(root, "cpu,cpuacct/docker/cpu.cfs_quota_us", "400000\n");
    put(root, "cpu,cpuacct/docker/cpu.cfs_period_us", "100000\n");
    CHECK(cpus_cgroup_limit(v1, root) == 4, "v1: 4 CPUs above the container: %d", cpus_cgroup_limit(v1, root));
    put(root, "cpu/docker/abc/cpu.cfs_quota_us", "150000\n");
    put(root, "cpu/docker/abc/cpu.cfs_period_us", "100000\n");
    CHECK(cpus_cgroup_limit("3:cpu:/docker/abc\n", root) == 2, "v1: cpu mounted alone: %d", cpus_cgroup_limit("3:cpu:/docker/abc\n", root));
    /* malformed text and files: no quota, no crash */
    put(root, "bad/cpu.max", "lots 0\n");
    const char *odd[] = { "", "\n", "garbage", "0::", "0::/bad", "::::", "7:cpu", "0::/../../../../etc" };
    for (size_t i = 0; i < sizeof odd / sizeof *odd; i++) CHECK(cpus_cgroup_limit(odd[i], root) >= 0, "odd input %zu", i);
    CHECK(cpus_cgroup_limit("0::/bad\n", root) == 2, "a malformed cpu.max is none (the root's 2 remain): %d", cpus_cgroup_limit("0::/bad\n", root));
    char cmd[1100];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    CHECK(system(cmd) == 0, "cleanup");
}

static void test_affinity(void) {
    cpu_set_t all, one;
    REQUIRE(sched_getaffinity(0, sizeof all, &all) == 0, "sched_getaffinity");
    int n_default = cpus_default_threads(), n_allowed = cpus_allowed();
    CHECK(n_allowed >= 1 && n_allowed <= CPU_COUNT(&all), "%d allowed of %d in the mask", n_allowed, CPU_COUNT(&all));
    CHECK(n_default >= 1 && n_default <= n_allowed, "default %d threads for %d allowed CPUs", n_default, n_allowed);
    int first = 0;
    while (!CPU_ISSET(first, &all)) first++;
    CPU_ZERO(&one);
    CPU_SET(first, &one);
    REQUIRE(sched_setaffinity(0, sizeof one, &one) == 0, "sched_setaffinity");
    CHECK(cpus_allowed() == 1 && cpus_default_threads() == 1, "one allowed CPU: %d allowed, default %d threads", cpus_allowed(), cpus_default_threads());
    thread_pool *narrow = thread_pool_new(0);
    CHECK(narrow && thread_pool_size(narrow) == 1, "a default pool on one allowed CPU has %d threads", narrow ? thread_pool_size(narrow) : -1);
    thread_pool_free(narrow);
    REQUIRE(sched_setaffinity(0, sizeof all, &all) == 0, "sched_setaffinity back");
}

int main(void) {
    test_cgroup_limits();
    test_affinity();
    return test_finish("cpus");
}
