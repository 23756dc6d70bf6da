/* How many CPUs this process may use: its affinity mask, physical cores, a cgroup's CPU quota. */
#ifndef QWENC_BASE_CPUS_H
#define QWENC_BASE_CPUS_H

/* The CPUs this process may run on: its affinity mask (which containers and taskset narrow),
 * capped by a cgroup CPU quota (cpus_cgroup_limit); the online CPUs where the mask cannot be read.
 * At least 1. */
int cpus_allowed(void);

/* The default thread count: the physical cores among the allowed CPUs (hardware threads of one
 * core count once, as llama.cpp counts them: a second thread on a core adds little to these loops
 * and costs a hand-off at each), capped by a cgroup CPU quota. At least 1. */
int cpus_default_threads(void);

/* The CPUs a cgroup CPU quota grants: for a process whose /proc/self/cgroup reads `self_cgroup`,
 * with the cgroup file systems under `root` (normally /sys/fs/cgroup), quota / period rounded up
 * at the tightest of its cgroup and the cgroups above it, from cgroup v2's cpu.max ("150000
 * 100000"; "max" is none) or v1's cpu.cfs_quota_us and cpu.cfs_period_us (-1 is none). 0 where no
 * quota applies or nothing can be read. */
int cpus_cgroup_limit(const char *self_cgroup, const char *root);

#endif
