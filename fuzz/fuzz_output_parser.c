/* libFuzzer target: any bytes as model output, parsed at once and streamed in 3-byte chunks. */
#include <stdint.h>
#include <stdlib.h>

#include "qwenc.h"

static void ignore(const qwen_delta *d, void *user) { (void)d; (void)user; }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    qwen_parsed_output out;
    if (qwen_parse_output((const char *)data, size, size && data[0] == 'R', &out) == QWEN_OK) qwen_parsed_output_free(&out);
    qwen_output_parser *p = qwen_output_parser_new(false, ignore, NULL);
    for (size_t i = 0; i < size; i += 3) qwen_output_parser_feed(p, (const char *)data + i, size - i < 3 ? size - i : 3);
    qwen_output_parser_finish(p);
    qwen_output_parser_free(p);
    return 0;
}
