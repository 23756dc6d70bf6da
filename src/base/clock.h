/* Timing. */
#ifndef QWENC_BASE_CLOCK_H
#define QWENC_BASE_CLOCK_H

/* Seconds on the monotonic clock (for measuring intervals). */
double clock_seconds(void);

#endif
