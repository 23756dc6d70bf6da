/* Every case of golden/templates/cases.jsonl renders byte-exact (or fails where the reference
 * raised), plus engine behaviour the Qwen templates do not cover. */
#include <string.h>
#include <jansson.h>

#include "harness.h"
#include "chat/jinja.h"

static char *render_str(const char *tpl, const char *ctx_json, qwen_error **err) {
    jinja_template *t = jinja_parse(tpl, strlen(tpl), err);
    if (!t) return NULL;
    json_t *ctx = json_loads(ctx_json, 0, NULL);
    char *out = jinja_render(t, ctx, NULL, err);
    json_decref(ctx);
    jinja_free(t);
    return out;
}

static void expect_render(const char *tpl, const char *ctx, const char *want) {
    qwen_error *err = NULL;
    char *got = render_str(tpl, ctx, &err);
    CHECK(got && !strcmp(got, want), "template %s\n  got:  [%s]\n  want: [%s]%s", tpl, got ? got : "(error)", want, qwen_error_message(err));
    free(got);
    qwen_error_free(err);
}

static void expect_error(const char *tpl, const char *ctx, const char *needle) {
    qwen_error *err = NULL;
    char *got = render_str(tpl, ctx, &err);
    CHECK(!got && err && strstr(qwen_error_message(err), needle), "template %s should fail mentioning '%s', got [%s] %s", tpl, needle,
          got ? got : "", qwen_error_message(err));
    free(got);
    qwen_error_free(err);
}

static void test_engine(void) {
    expect_render("{{ 1 + 2 * 3 }}|{{ 7 // 2 }}|{{ -7 // 2 }}|{{ 7 % 3 }}|{{ 2 ** 10 }}|{{ 1 / 4 }}", "{}", "7|3|-4|1|1024|0.25");
    expect_render("{{ 'a' ~ 1 ~ none ~ true }}", "{}", "a1NoneTrue");
    expect_render("{{ [1, 'x', none, true, 1.5, {'k': [2]}] }}", "{}", "[1, 'x', None, True, 1.5, {'k': [2]}]");
    expect_render("{{ x | tojson }}|{{ x | tojson(indent=2) }}", "{\"x\": {\"a\": [1, 2.0, \"é\\n\"], \"b\": null}}",
                  "{\"a\": [1, 2.0, \"é\\n\"], \"b\": null}|{\n  \"a\": [\n    1,\n    2.0,\n    \"é\\n\"\n  ],\n  \"b\": null\n}");
    expect_render("{{ x | tojson(separators=(',', ':'), sort_keys=true) }}", "{\"x\": {\"b\": 1, \"a\": 2}}", "{\"a\":2,\"b\":1}");
    /* transformers' positional order: ensure_ascii, indent, separators, sort_keys */
    expect_render("{{ x | tojson(ensure_ascii=true) }}|{{ x | tojson(false, 1) }}", "{\"x\": [\"é😀\"]}", "[\"\\u00e9\\ud83d\\ude00\"]|[\n \"é😀\"\n]");
    expect_render("{{ 'abcdef'[::-1] }}|{{ 'abcdef'[1:3] }}|{{ [1,2,3,4][-2:] }}|{{ 'héllo'[1] }}", "{}", "fedcba|bc|[3, 4]|é");
    expect_render("{% for x in [3,4,5] %}{{ loop.index0 }}{{ loop.first }}{{ loop.last }}{{ loop.length }}{% if not loop.last %},{% endif %}{% endfor %}",
                  "{}", "0TrueFalse3,1FalseFalse3,2FalseTrue3");
    expect_render("{% for x in [] %}a{% else %}empty{% endfor %}", "{}", "empty");
    expect_render("{% for x in [1,2,3,4] if x is even %}{{ x }}{% endfor %}", "{}", "24");
    expect_render("{% for x in range(10) %}{% if x == 3 %}{% break %}{% endif %}{% if x == 1 %}{% continue %}{% endif %}{{ x }}{% endfor %}", "{}", "02");
    expect_render("{% for k, v in d | items %}{{ k }}={{ v }};{% endfor %}", "{\"d\": {\"z\": 1, \"a\": 2}}", "z=1;a=2;");
    expect_render("{% set ns = namespace(n=0) %}{% for i in [1,2] %}{% set ns.n = ns.n + i %}{% set local = 5 %}{% endfor %}{{ ns.n }}{{ local is defined }}",
                  "{}", "3False");
    expect_render("{% macro m(a, b='B') %}[{{ a }}{{ b }}]{% endmacro %}{{ m(1) }}{{ m(2, b='x') }}", "{}", "[1B][2x]");
    expect_render("{{ '  hi  ' | trim }}|{{ ' x '.strip() }}|{{ 'a,b,,c'.split(',') }}|{{ ' a  b '.split() }}|{{ 'abc'.startswith(('x','a')) }}",
                  "{}", "hi|x|['a', 'b', '', 'c']|['a', 'b']|True");
    expect_render("{{ 'Hello'.upper() }}{{ 'Hello' | lower }}{{ 'x' if false else 'y' }}{{ 'a' in 'cat' }}{{ 'k' in {'k': 1} }}{{ 3 not in [1] }}",
                  "{}", "HELLOhelloyTrueTrueTrue");
    expect_render("{{ missing }}|{{ missing is defined }}|{{ d.nokey is defined }}|{{ missing | default('dft') }}", "{\"d\": {}}", "|False|False|dft");
    expect_render("{{ 1.0 }} {{ 0.1 }} {{ 1e-5 }} {{ 1e20 }} {{ 2.5e-3 }} {{ 123456.789 }}", "{}", "1.0 0.1 1e-05 1e+20 0.0025 123456.789");
    expect_render("{{ \"it's\" | string }}{{ ['it\\'s'] }}", "{}", "it's[\"it's\"]");
    expect_render("a  \n  {%- if true %}\nX{% endif -%}  \n b", "{}", "aXb");
    expect_render("a\n  {% if true %}\nX\n  {% endif %}\nb", "{}", "a\nX\nb");
    expect_render("<ul>\n    {% for i in [1] %}\n    <li>{{ i }}</li>\n    {% endfor %}\n</ul>", "{}", "<ul>\n    <li>1</li>\n</ul>");
    expect_render("{# comment #}x{#- trimmed -#}  y", "{}", "xy");
    expect_render("{{ [1,2,3] | join('-') }}|{{ [1,2] | length }}|{{ [1,2,3] | first }}{{ [1,2,3] | last }}|{{ [1,2] | reverse | list }}", "{}",
                  "1-2-3|2|13|[2, 1]");
    expect_render("{{ [{'a': 1}, {'a': 2}] | map(attribute='a') | list }}{{ [{'a': 1}, {'b': 2}] | selectattr('a', 'defined') | list | length }}",
                  "{}", "[1, 2]1");
    expect_render("{% set x %}in{{ 1 }}{% endset %}[{{ x }}]", "{}", "[in1]");
    /* jinja2 normalises line breaks and drops one trailing newline (keep_trailing_newline=False) */
    expect_render("a\r\nb\rc\n", "{}", "a\nb\nc");
    expect_render("{% if true %}\r\nX{% endif %}\n\n", "{}", "X");
    expect_render("{{ 1 }}\n\n", "{}", "1\n");
    expect_render("a{% raw %}{{ not evaluated }}{% endraw %}b", "{}", "a{{ not evaluated }}b");
    expect_render("{% for m in ms %}{% generation %}{{ m }}{% endgeneration %}{% endfor %}", "{\"ms\": [1, 2]}", "12");

    /* integers stay exact in int64 (Python's would grow: beyond int64, an error, never a wrapped or
     * undefined value); floats beyond double are inf, as Python's */
    expect_render("{{ -9223372036854775807 - 1 }}|{{ 2 ** 62 }}|{{ 9007199254740993 + 0 }}|{{ 2 ** -1 }}|{{ 1e999 }}|{{ '' * 1000000000000000000 }}|{{ 'ab' * 2 }}",
                  "{}", "-9223372036854775808|4611686018427387904|9007199254740993|0.5|inf||abab");
    expect_render("{{ range(9223372036854775800, 9223372036854775807, 5) | list }}|{{ 'abc'[2::9223372036854775807] }}|{{ [1, 2, 3][1::9223372036854775807] }}|"
                  "{{ range(-9223372036854775800, -9223372036854775807 - 1, -7) | list | length }}", "{}", "[9223372036854775800, 9223372036854775805]|c|[2]|2");
    expect_error("{{ range(1e30) }}", "{}", "integer out of range");
    expect_render("{{ range(100000) | list | length }}", "{}", "100000");
    expect_error("{{ range(100001) | list | length }}", "{}", "range() too large");
    /* the int filter as jinja2's (int(x), else int(float(x)), else the default), exact in int64 */
    expect_render("{{ '12' | int }}|{{ ' 12 ' | int }}|{{ '12abc' | int }}|{{ '3.7' | int }}|{{ 'x' | int(5) }}|{{ -3.9 | int }}|{{ true | int }}|"
                  "{{ '9007199254740993' | int }}|{{ none | int }}|{{ '1e3' | int }}|{{ 'nan' | int }}",
                  "{}", "12|12|0|3|5|-3|1|9007199254740993|0|1000|0");
    expect_error("{{ 1e30 | int }}", "{}", "integer out of range");
    expect_error("{{ '99999999999999999999' | int }}", "{}", "out of range");
    /* indentation widths: Python's for negative ones, bounded (a width of 10^12 would never end) */
    expect_render("{{ [1] | tojson(indent=-3) }}|{{ 'a\nb' | indent(-2) }}", "{}", "[\n1\n]|a\nb");
    expect_error("{{ 'a\nb' | indent(1000000000000) }}", "{}", "indent width 1000000000000 too large");
    expect_error("{{ [1] | tojson(indent=4294967297) }}", "{}", "tojson indent 4294967297 too large");
    /* a runaway template (its values past 256 MB: a string, a list doubled in a loop) fails cleanly */
    expect_error("{% set ns = namespace(s='x') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s | length }}", "{}",
                 "may use 256 MB at most");
    expect_error("{% set ns = namespace(l=[0]) %}{% for i in range(40) %}{% set ns.l = ns.l + ns.l %}{% endfor %}{{ ns.l | length }}", "{}",
                 "may use 256 MB at most");
    /* text that filters build is bounded too: a 16 MB separator joined 100 times, 330 MB of indentation */
    expect_error("{{ range(100) | join('x' * 16000000) }}", "{}", "may use 256 MB at most");
    expect_error("{% set l = range(30000) | list %}{{ [[[[[[[[[[l]]]]]]]]]] | tojson(indent=1024) }}", "{}", "may use 256 MB at most");
    expect_render("{{ {'a': [1, {'b': 2}]} | tojson(indent=70) | length }}", "{}", "796"); /* json.dumps's 796 characters */
    /* values nested 1000 deep (Python's recursion limit) print, compare and serialize; deeper ones
     * never overflow the stack (300000 deep crashed before): [...], unequal, a tojson error */
    expect_render("{% set ns = namespace(l=[]) %}{% for i in range(999) %}{% set ns.l = [ns.l] %}{% endfor %}"
                  "{{ ns.l | tojson | length }}|{{ ns.l | string | length }}|{{ ns.l == ns.l }}", "{}", "2000|2000|True");
    expect_render("{% set ns = namespace(l=[]) %}{% for j in range(3) %}{% for i in range(100000) %}{% set ns.l = [ns.l] %}{% endfor %}{% endfor %}"
                  "{{ ns.l | string | length }}|{{ (ns.l | string)[995:1010] }}|{{ ns.l == ns.l }}", "{}", "2005|[[[[[[...]]]]]]|False");
    expect_error("{% set ns = namespace(l=[]) %}{% for i in range(1000) %}{% set ns.l = [ns.l] %}{% endfor %}{{ ns.l | tojson }}", "{}",
                 "nested more than 1000 deep");
    expect_error("{{ 2 ** 63 }}", "{}", "integer overflow in '**'");
    expect_error("{{ 9223372036854775807 + 1 }}", "{}", "integer overflow in '+'");
    expect_error("{{ -9223372036854775807 - 2 }}", "{}", "integer overflow in '-'");
    expect_error("{{ 4611686018427387904 * 2 }}", "{}", "integer overflow in '*'");
    expect_error("{{ (-9223372036854775807 - 1) // -1 }}", "{}", "integer overflow in '//'");
    expect_error("{{ (-9223372036854775807 - 1) % -1 }}", "{}", "integer overflow in '%'");
    expect_error("{{ -(-9223372036854775807 - 1) }}", "{}", "integer overflow in unary '-'");
    expect_error("{{ 9223372036854775808 }}", "{}", "integer literal out of range");
    expect_error("{{ 1234567890123456789012345678901234567890123456789012345678901234567890 }}", "{}", "integer literal out of range");
    expect_error("{{ 'ab' * 9223372036854775807 }}", "{}", "string repetition too large");
    char long_literal[700] = "{{ 0.";
    memset(long_literal + 5, '1', 600);
    memcpy(long_literal + 605, " }}", 4);
    expect_error(long_literal, "{}", "number literal too long");
    expect_error("{{ raise_exception('boom') }}", "{}", "boom");
    expect_error("{{ missing.attr }}", "{}", "'missing' is undefined");
    expect_error("{% if x %}", "{}", "line 1");
    expect_error("{{ 1 +  }}", "{}", "column");
    expect_error("{{ 'a' + 1 }}", "{}", "unsupported operand");
    expect_error("{{ 'abc' | items }}", "{}", "Can only get item pairs from a mapping.");
    expect_error("line1\n{% for %}", "{}", "line 2");
    expect_error("{{ x | nosuchfilter }}", "{\"x\": 1}", "unknown filter");
    expect_error("{% macro m() %}{{ m() }}{% endmacro %}{{ m() }}", "{}", "too deep");
    expect_error("{{ 'unterminated }}", "{}", "unterminated string");
    expect_error("{% set x = 1 %}{% set x.y = 2 %}", "{}", "namespace");
    expect_error("{% raw %} never closed", "{}", "endraw");
    char deep[4096] = "{{ ";
    for (int i = 0; i < 1000; i++) strcat(deep, "(");
    strcat(deep, "x }}");
    expect_error(deep, "{}", "nested too deeply");
    char deep_not[8000] = "{{ ";
    for (int i = 0; i < 1000; i++) strcat(deep_not, "not ");
    strcat(deep_not, "x }}");
    expect_error(deep_not, "{}", "nested too deeply");
}

static void test_golden_cases(void) {
    char *path = golden_path("templates/cases.jsonl");
    FILE *f = fopen(path, "r");
    REQUIRE(f, "open %s", path);
    char *line = NULL;
    size_t cap = 0;
    ssize_t got;
    int n_cases = 0, n_errors = 0;
    while ((got = getline(&line, &cap, f)) > 0) {
        json_t *c = json_loadb(line, (size_t)got, 0, NULL);
        REQUIRE(c, "case line parses");
        const char *file = json_string_value(json_object_get(c, "template"));
        const char *name = json_string_value(json_object_get(c, "case"));
        char rel[256];
        snprintf(rel, sizeof rel, "templates/%s", file);
        char *tpath = golden_path(rel);
        FILE *tf = fopen(tpath, "rb");
        REQUIRE(tf, "open %s", tpath);
        char *src = malloc(1 << 20);
        size_t n = fread(src, 1, (1 << 20) - 1, tf);
        fclose(tf);
        qwen_error *err = NULL;
        jinja_template *t = jinja_parse(src, n, &err);
        CHECK(t, "%s: parse: %s", file, qwen_error_message(err));
        char *out = t ? jinja_render(t, json_object_get(c, "context"), NULL, &err) : NULL;
        json_t *expected = json_object_get(c, "expected");
        if (expected) {
            bool same = out && !strcmp(out, json_string_value(expected));
            CHECK(same, "%s / %s: %s", file, name, out ? "output differs" : qwen_error_message(err));
            if (!same && out) {
                const char *w = json_string_value(expected);
                size_t k = 0;
                while (out[k] && out[k] == w[k]) k++;
                fprintf(stderr, "  first difference at byte %zu:\n  got:  [%.80s]\n  want: [%.80s]\n", k, out + k, w + k);
            }
        } else {
            n_errors++;
            CHECK(!out && err, "%s / %s: expected an error (%s)", file, name, json_string_value(json_object_get(c, "expected_error")));
            if (err) printf("%s / %s: error as expected: %s\n", file, name, qwen_error_message(err));
        }
        n_cases++;
        free(out);
        qwen_error_free(err);
        jinja_free(t);
        free(src);
        free(tpath);
        json_decref(c);
    }
    free(line);
    fclose(f);
    free(path);
    CHECK(n_cases == 78 && n_errors == 2, "read %d cases, %d error cases", n_cases, n_errors);
}

int main(void) {
    test_engine();
    test_golden_cases();
    return test_finish("templates");
}
