/* test_serve_http.c - the request parser of the HTTP server (rf_serve_parse_request): a good
 * body into the scorer's request (strings as given, integers as integers, other numbers with
 * %.17g so they read back exactly, null as missing, "top"), and malformed bodies failing with the
 * right status and the field at fault (line/column of a JSON syntax error, a missing or
 * non-array "candidates", a non-object candidate, an unknown column, a value of another type,
 * too many candidates, a bad "top", unknown fields), every prefix of a good body without a crash
 * or a leak; and rf_server_start's argument errors. The server itself: tests/cli/serve.sh. */
#include "test_util.h"

#include "resflow/serve_http.h"
#include "serve/reqparse_impl.h"

static const char *const COLS[] = {"user", "age", "item", "price"};

static rf_status parse(const char *body, int maxc, rf_serve_parsed *p, rf_error *e)
{
    rf_error_clear(e);
    return rf_serve_parse_request(body, strlen(body), COLS, 4, maxc, p, e);
}

static void test_good(void **state)
{
    (void)state;
    const char *b = "{\"context\": {\"user\": \"u1\", \"age\": 31},\n"
                    " \"candidates\": [{\"item\": \"i7\", \"price\": 12.5}, {\"item\": \"i8\", \"price\": null},\n"
                    "                {\"price\": 0.1}, {}], \"top\": 2}";
    rf_serve_parsed p;
    rf_error e;
    assert_int_equal(parse(b, 10, &p, &e), RF_OK);
    assert_int_equal(p.top, 2);
    assert_int_equal(p.req.context.n, 2);
    assert_string_equal(p.req.context.names[0], "user");
    assert_string_equal(p.req.context.values[0], "u1");
    assert_string_equal(p.req.context.names[1], "age");
    assert_string_equal(p.req.context.values[1], "31");
    assert_int_equal(p.req.n_candidates, 4);
    assert_int_equal(p.req.candidates[0].n, 2);
    assert_string_equal(p.req.candidates[0].values[0], "i7");
    assert_string_equal(p.req.candidates[0].names[1], "price");
    assert_string_equal(p.req.candidates[0].values[1], "12.5");
    assert_null(p.req.candidates[1].values[1]);
    assert_int_equal(p.req.candidates[2].n, 1);
    assert_true(strtod(p.req.candidates[2].values[0], NULL) == 0.1); /* %.17g reads back exactly */
    assert_int_equal(p.req.candidates[3].n, 0);
    rf_serve_parsed_free(&p);
    rf_serve_parsed_free(&p); /* twice is harmless */

    /* no context, no top, no column check */
    const char *b2 = "{\"candidates\": [{\"x\": 1}]}";
    assert_int_equal(rf_serve_parse_request(b2, strlen(b2), NULL, 0, 0, &p, &e), RF_OK);
    assert_int_equal(p.top, -1);
    assert_int_equal(p.req.context.n, 0);
    assert_int_equal(p.req.n_candidates, 1);
    rf_serve_parsed_free(&p);
    assert_int_equal(parse("{\"candidates\": []}", 10, &p, &e), RF_OK);
    assert_int_equal(p.req.n_candidates, 0);
    rf_serve_parsed_free(&p);
}

typedef struct {
    const char *body;
    rf_status st;
    const char *field;    /* out.field */
    const char *msg_part; /* in the message */
} bad_case;

static void test_bad(void **state)
{
    (void)state;
    static const bad_case cases[] = {
        {"", RF_EDATA, "", "malformed JSON at line"},
        {"{\"candidates\": [\n {\"item\": \"a\"},\n {\"item\" \"b\"}]}", RF_EDATA, "", "line 3, column"},
        {"[1, 2]", RF_EDATA, "", "must be a JSON object"},
        {"{\"context\": {}}", RF_EDATA, "candidates", "missing"},
        {"{\"candidates\": {\"item\": \"a\"}}", RF_EDATA, "candidates", "array"},
        {"{\"context\": [1], \"candidates\": []}", RF_EDATA, "context", "object"},
        {"{\"candidates\": [{\"item\": \"a\"}, 3]}", RF_EDATA, "candidates[1]", "must be an object"},
        {"{\"candidates\": [{\"item\": \"a\", \"colour\": \"red\"}]}", RF_EUSAGE, "candidates[0].colour",
         "unknown column 'colour'"},
        {"{\"context\": {\"usr\": 1}, \"candidates\": []}", RF_EUSAGE, "context.usr", "unknown column 'usr'"},
        {"{\"candidates\": [{\"price\": true}]}", RF_EDATA, "candidates[0].price", "string, a number or null"},
        {"{\"candidates\": [{\"price\": [1]}]}", RF_EDATA, "candidates[0].price", "string, a number or null"},
        {"{\"candidates\": [{}, {}, {}, {}]}", RF_EUSAGE, "candidates", "at most 3"},
        {"{\"candidates\": [], \"top\": -1}", RF_EDATA, "top", "integer >= 0"},
        {"{\"candidates\": [], \"top\": \"5\"}", RF_EDATA, "top", "integer >= 0"},
        {"{\"candidates\": [], \"limit\": 5}", RF_EDATA, "limit", "unknown field"},
        {"{\"candidates\": [], \"candidates\": []}", RF_EDATA, "", "duplicate"},
        {"{\"candidates\": [{\"item\": \"a\\u0000b\"}]}", RF_EDATA, "", "u0000"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        rf_serve_parsed p;
        rf_error e;
        rf_status st = parse(cases[i].body, 3, &p, &e);
        if (st != cases[i].st || strcmp(p.field, cases[i].field) || !strstr(e.msg, cases[i].msg_part))
            fail_msg("case %zu (%s): status %d field '%s' message '%s'", i, cases[i].body, (int)st, p.field, e.msg);
        assert_null(p.priv_);
        rf_serve_parsed_free(&p);
    }
    /* jansson's position is in the error too */
    rf_serve_parsed p;
    rf_error e;
    assert_int_equal(parse("{\"candidates\": [\n {\"item\" \"b\"}]}", 3, &p, &e), RF_EDATA);
    assert_int_equal(e.line, 2);
    assert_true(e.col > 0);
    /* not NUL-terminated: only n bytes are read */
    const char good[] = "{\"candidates\": []}xxxx";
    assert_int_equal(rf_serve_parse_request(good, sizeof good - 5, NULL, 0, 0, &p, &e), RF_OK);
    rf_serve_parsed_free(&p);
    assert_int_equal(rf_serve_parse_request(NULL, 0, NULL, 0, 0, &p, &e), RF_EDATA);
    assert_int_equal(rf_serve_parse_request(NULL, 0, NULL, 0, 0, NULL, &e), RF_EUSAGE);
}

/* every prefix of a good body: an error or a request, never a crash (ASan: never a leak) */
static void test_prefixes(void **state)
{
    (void)state;
    const char *b = "{\"context\": {\"user\": \"u1\", \"age\": 31.25}, \"candidates\": [{\"item\": \"i7\", "
                    "\"price\": -1e300}, {\"item\": null}], \"top\": 1}";
    size_t n = strlen(b);
    int ok = 0;
    for (size_t k = 0; k <= n; k++) {
        char *buf = malloc(k ? k : 1); /* exactly k bytes: a read past them is an ASan error */
        memcpy(buf, b, k);
        rf_serve_parsed p;
        rf_error e;
        rf_error_clear(&e);
        if (rf_serve_parse_request(buf, k, COLS, 4, 10, &p, &e) == RF_OK) ok++;
        rf_serve_parsed_free(&p);
        free(buf);
    }
    assert_int_equal(ok, 1); /* only the whole body */
}

/* The fast parser (reqfast.c) against the jansson one (the reference) on bodies it must take and
 * on bodies it must leave to jansson: when it takes one, the answer is the same. */
static void test_fast_vs_jansson(void **state)
{
    (void)state;
    static const struct {
        const char *body;
        int fast; /* 1: the fast path must take it */
    } cases[] = {
        {"{\"candidates\": [{\"item\": \"i7\", \"price\": 12.5}, {\"item\": \"i8\", \"price\": null}]}", 1},
        {" \t\r\n{ \"top\" : 0 , \"context\" : { \"user\" : \"u\" } , \"candidates\" : [ { } , {\"age\":7} ] } \n", 1},
        {"{\"candidates\": [{\"price\": 0.1}, {\"price\": 1e2}, {\"price\": -0}, {\"price\": -0.0}]}", 1},
        {"{\"candidates\": [{\"price\": 123456789012345678}, {\"price\": -123456789012345678}, {\"price\": 2.5e-320}, {\"price\": 1E-7}]}", 1},
        {"{\"candidates\": [{\"item\": \"a\\\"b\\\\c\\/d\\b\\f\\n\\r\\t\"}]}", 1},
        {"{\"candidates\": [{\"item\": \"\\u00e9\\u20AC\\ud83d\\ude00 \xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"}]}", 1},
        {"{\"candidates\": [{\"it\\u0065m\": \"x\"}], \"context\": null, \"top\": null}", 1},
        {"{\"context\": {\"user\": \"u\", \"age\": 3}, \"candidates\": [{\"item\": \"a\", \"price\": \"1\"},"
         " {\"price\": \"2\", \"item\": \"b\"}, {\"item\": \"c\"}], \"top\": 1000000000}", 1},
        {"{\"candidates\": []}", 1},
        /* left to jansson: errors, and what it alone decides */
        {"{\"candidates\": [{\"price\": 1234567890123456789}]}", 0},
        {"{\"candidates\": [{\"price\": 99999999999999999999}]}", 0},
        {"{\"candidates\": [{\"price\": 1e400}]}", 0},
        {"{\"candidates\": [{\"price\": 01}]}", 0},
        {"{\"candidates\": [{\"price\": 1.}]}", 0},
        {"{\"candidates\": [{\"price\": .5}]}", 0},
        {"{\"candidates\": [{\"price\": +1}]}", 0},
        {"{\"candidates\": [{\"price\": -}]}", 0},
        {"{\"candidates\": [{\"item\": \"\\ud83d\"}]}", 0},
        {"{\"candidates\": [{\"item\": \"\\ude00\"}]}", 0},
        {"{\"candidates\": [{\"item\": \"\\u0000\"}]}", 0},
        {"{\"candidates\": [{\"item\": \"\xc0\xaf\"}]}", 0},
        {"{\"candidates\": [{\"item\": \"\xed\xa0\x80\"}]}", 0},
        {"{\"candidates\": [{\"item\": \"\xf4\x90\x80\x80\"}]}", 0},
        {"{\"candidates\": [{\"item\": \"a\tb\"}]}", 0},
        {"{\"candidates\": [{\"item\": \"a\", \"item\": \"b\"}]}", 0},
        {"{\"candidates\": [{\"item\": \"a\", \"ite\\u006d\": \"b\"}]}", 0},
        {"{\"candidates\": [{\"item\": true}]}", 0},
        {"{\"candidates\": [{\"item\": nul}]}", 0},
        {"{\"candidates\": [{\"colour\": 1}]}", 0},
        {"{\"candidates\": [], \"top\": -0}", 0},
        {"{\"candidates\": [], \"top\": 1000000001}", 0},
        {"{\"candidates\": [], \"top\": 1.0}", 0},
        {"{\"candidates\": [], \"candidates\": []}", 0},
        {"{\"candidates\": [],}", 0},
        {"{\"candidates\": [{},]}", 0},
        {"{\"candidates\": [{}]} x", 0},
        {"{\"candidates\": [{}, {}, {}, {}, {}]}", 0}, /* more than 4 */
        {"{\"context\": {}}", 0},
        {"[]", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *b = cases[i].body;
        rf_serve_parsed f, j;
        rf_error e;
        rf_error_clear(&e);
        int took = rf_req_fast_(b, strlen(b), COLS, 4, 4, &f);
        rf_status st = rf_req_slow_(b, strlen(b), COLS, 4, 4, &j, &e);
        if (took != cases[i].fast) fail_msg("case %zu (%s): fast path %s it", i, b, took ? "took" : "left");
        if (took && st != RF_OK) fail_msg("case %zu (%s): fast took what jansson refuses: %s", i, b, e.msg);
        if (took && !rf_req_same_(&f, &j)) fail_msg("case %zu (%s): fast and jansson differ", i, b);
        if (took) /* a name is the column list's own pointer */
            for (int c = 0; c < f.req.n_candidates; c++)
                for (int k = 0; k < f.req.candidates[c].n; k++) {
                    const char *nm = f.req.candidates[c].names[k];
                    assert_true(nm == COLS[0] || nm == COLS[1] || nm == COLS[2] || nm == COLS[3]);
                }
        if (!took) assert_null(f.priv_);
        rf_serve_parsed_free(&f);
        rf_serve_parsed_free(&j);
    }
}

static void test_server_args(void **state)
{
    (void)state;
    rf_server *s = (rf_server *)1;
    rf_error e;
    rf_error_clear(&e);
    assert_int_equal(rf_server_start(NULL, NULL, &s, &e), RF_EUSAGE);
    rf_server_opts o = {.host = "localhost:80"};
    assert_int_equal(rf_server_start("/nonexistent.model", &o, &s, &e), RF_EUSAGE);
    assert_non_null(strstr(e.msg, "IPv4"));
    assert_null(s);
    o = (rf_server_opts){.port = 70000};
    assert_int_equal(rf_server_start("/nonexistent.model", &o, &s, &e), RF_EUSAGE);
    o = (rf_server_opts){.port = 0};
    assert_int_not_equal(rf_server_start("/nonexistent/x.model", &o, &s, &e), RF_OK); /* no model: no server */
    assert_null(s);
    assert_int_equal(rf_server_port(NULL), 0);
    assert_int_equal(rf_server_done(NULL), 0);
    assert_int_equal(rf_server_reload(NULL, &e), RF_EUSAGE);
    rf_server_stop(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good),
        cmocka_unit_test(test_bad),
        cmocka_unit_test(test_prefixes),
        cmocka_unit_test(test_fast_vs_jansson),
        cmocka_unit_test(test_server_args),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
