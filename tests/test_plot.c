/* test_plot.c - the SVG line plot: well-formed XML, points, error bars, NaN, log axes, ticks. */
#include <unistd.h>

#include "test_util.h"

#include "resflow/lab/plot.h"

/* ---- a small XML well-formedness check (the CLI test also runs xmllint when present) ------- */

/* Returns 1 when every tag is closed in order, attributes are quoted, and '&' starts a known
 * entity; *why gets the reason otherwise. Enough for what plot.c writes. */
static int well_formed(const char *s, const char **why)
{
    char stack[64][32];
    int depth = 0, roots = 0;
    const char *p = s;
    if (!strncmp(p, "<?xml", 5)) {
        p = strstr(p, "?>");
        if (!p) return *why = "unterminated XML declaration", 0;
        p += 2;
    }
    while (*p) {
        if (*p == '&') {
            const char *e = strchr(p, ';');
            if (!e || e - p > 8) return *why = "bare &", 0;
            if (strncmp(p, "&amp;", 5) && strncmp(p, "&lt;", 4) && strncmp(p, "&gt;", 4) && strncmp(p, "&quot;", 6) &&
                strncmp(p, "&apos;", 6) && strncmp(p, "&#", 2))
                return *why = "unknown entity", 0;
            p = e + 1;
            continue;
        }
        if (*p == '>') return *why = "stray >", 0;
        if (*p != '<') {
            if (!depth && !strchr(" \t\r\n", *p)) return *why = "text outside the root", 0;
            p++;
            continue;
        }
        int closing = p[1] == '/';
        const char *n = p + 1 + closing;
        size_t len = strspn(n, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_:");
        if (!len || len >= 32) return *why = "bad tag name", 0;
        const char *q = n + len;
        /* attributes: name="value" */
        for (;;) {
            q += strspn(q, " \t\r\n");
            if (*q == '>' || (*q == '/' && q[1] == '>')) break;
            if (closing) return *why = "attributes on a closing tag", 0;
            size_t an = strspn(q, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_:");
            if (!an || q[an] != '=' || q[an + 1] != '"') return *why = "unquoted attribute", 0;
            const char *v = q + an + 2, *ve = strchr(v, '"');
            if (!ve) return *why = "unterminated attribute", 0;
            for (const char *c = v; c < ve; c++)
                if (*c == '<') return *why = "< in an attribute", 0;
            q = ve + 1;
        }
        if (*q == '/') { /* empty element */
            if (!depth) roots++;
            p = q + 2;
            continue;
        }
        if (closing) {
            if (!depth || strncmp(stack[depth - 1], n, len) || stack[depth - 1][len]) return *why = "mismatched close", 0;
            depth--;
        } else {
            if (depth == 64) return *why = "too deep", 0;
            if (!depth) roots++;
            memcpy(stack[depth], n, len);
            stack[depth++][len] = '\0';
        }
        p = q + 1;
    }
    if (depth) return *why = "unclosed element", 0;
    if (roots != 1) return *why = "not exactly one root element", 0;
    return 1;
}

static int count(const char *s, const char *needle)
{
    int n = 0;
    for (const char *p = strstr(s, needle); p; p = strstr(p + 1, needle)) n++;
    return n;
}

static void assert_well_formed(const char *svg)
{
    const char *why = "";
    if (!well_formed(svg, &why)) {
        fprintf(stderr, "not well-formed: %s\n%s\n", why, svg);
        fail();
    }
}

/* ---- tests ------------------------------------------------------------------------------------ */

static void test_checker_rejects_bad_xml(void **state)
{
    (void)state;
    const char *why;
    assert_true(well_formed("<a><b/></a>", &why));
    assert_false(well_formed("<a><b></a>", &why));
    assert_false(well_formed("<a x=1/>", &why));
    assert_false(well_formed("<a>x & y</a>", &why));
    assert_false(well_formed("<a/><b/>", &why));
}

static void test_points_and_bars(void **state)
{
    (void)state;
    double x[] = {4, 8, 16, 32, 64}, y1[] = {0.80, 0.81, 0.805, 0.79, 0.78}, e1[] = {0.01, 0.02, 0.0, 0.01, NAN};
    double y2[] = {0.70, 0.72, 0.74, 0.76, 0.78};
    rf_plot_series s[2] = {{"resflow", 5, x, y1, e1}, {"nse <&> \"q\"", 5, x, y2, NULL}};
    rf_plot_opts o = {.title = "CTCVR AUC & embedding", .xlabel = "model.emb_dim", .ylabel = "AUC", .log_x = 1};
    char *svg = NULL;
    rf_error e;
    assert_int_equal(rf_plot_svg(&o, s, 2, &svg, &e), RF_OK);
    assert_well_formed(svg);
    assert_int_equal(count(svg, "class=\"pt\""), 10);
    /* bars only where err is finite and > 0: 3 of resflow's, none of nse's */
    assert_int_equal(count(svg, "class=\"err\""), 3);
    assert_int_equal(count(svg, "class=\"line\""), 2);
    assert_int_equal(count(svg, "class=\"key\""), 2);
    assert_non_null(strstr(svg, "nse &lt;&amp;&gt; &quot;q&quot;"));
    assert_non_null(strstr(svg, "CTCVR AUC &amp; embedding"));
    assert_non_null(strstr(svg, "resflow: x = 8, y = 0.8100 &#177; 0.0200"));
    free(svg);
}

static void test_nan_points_skipped(void **state)
{
    (void)state;
    double x[] = {1, 2, 3, 4, NAN}, y[] = {0.5, NAN, 0.7, 0.6, 0.9}, e[] = {0.1, 0.1, 0.1, 0.1, 0.1};
    rf_plot_series s = {"a", 5, x, y, e};
    rf_plot_opts o = {0};
    char *svg = NULL;
    rf_error err;
    assert_int_equal(rf_plot_svg(&o, &s, 1, &svg, &err), RF_OK);
    assert_well_formed(svg);
    assert_int_equal(count(svg, "class=\"pt\""), 3);
    assert_int_equal(count(svg, "class=\"err\""), 3);
    /* the line breaks at the missing point: 1 | 3-4 */
    assert_int_equal(count(svg, "class=\"line\""), 2);
    assert_null(strstr(svg, "nan"));
    free(svg);
    /* all missing: still a plot, saying so */
    double yn[] = {NAN, NAN};
    rf_plot_series s2 = {"b", 2, x, yn, NULL};
    assert_int_equal(rf_plot_svg(&o, &s2, 1, &svg, &err), RF_OK);
    assert_well_formed(svg);
    assert_int_equal(count(svg, "class=\"pt\""), 0);
    assert_non_null(strstr(svg, "no data"));
    free(svg);
    /* no series at all */
    assert_int_equal(rf_plot_svg(&o, NULL, 0, &svg, &err), RF_OK);
    assert_well_formed(svg);
    free(svg);
}

static void test_log_axis_needs_positive_x(void **state)
{
    (void)state;
    double x[] = {0, 1, 10}, y[] = {1, 2, 3};
    rf_plot_series s = {"lr", 3, x, y, NULL};
    rf_plot_opts o = {.log_x = 1};
    char *svg = (char *)1;
    rf_error e;
    assert_int_equal(rf_plot_svg(&o, &s, 1, &svg, &e), RF_EUSAGE);
    assert_null(svg);
    assert_non_null(strstr(e.msg, "log x axis"));
    assert_non_null(strstr(e.msg, "\"lr\" has x = 0"));
    x[0] = -1;
    assert_int_equal(rf_plot_svg(&o, &s, 1, &svg, &e), RF_EUSAGE);
    /* a non-positive x whose y is missing is not drawn, so it is no error */
    y[0] = NAN;
    assert_int_equal(rf_plot_svg(&o, &s, 1, &svg, &e), RF_OK);
    free(svg);
    /* a linear axis takes it */
    y[0] = 1;
    o.log_x = 0;
    assert_int_equal(rf_plot_svg(&o, &s, 1, &svg, &e), RF_OK);
    free(svg);
    /* caller ticks must be positive too */
    double xt[] = {0, 10};
    x[0] = 1;
    o = (rf_plot_opts){.log_x = 1, .n_xticks = 2, .xtick = xt};
    assert_int_equal(rf_plot_svg(&o, &s, 1, &svg, &e), RF_EUSAGE);
    assert_non_null(strstr(e.msg, "x tick"));
    /* bad sizes and arrays */
    o = (rf_plot_opts){.width = 50};
    assert_int_equal(rf_plot_svg(&o, &s, 1, &svg, &e), RF_EUSAGE);
    rf_plot_series bad = {"z", 2, NULL, y, NULL};
    o = (rf_plot_opts){0};
    assert_int_equal(rf_plot_svg(&o, &bad, 1, &svg, &e), RF_EUSAGE);
}

static void assert_ticks(double lo, double hi, int lg, const double *want, int n)
{
    double t[RF_PLOT_MAX_TICKS];
    int got = rf_plot_ticks(lo, hi, lg, t, RF_PLOT_MAX_TICKS);
    if (got != n) {
        fprintf(stderr, "ticks [%g, %g] log=%d: %d ticks, expected %d:", lo, hi, lg, got, n);
        for (int i = 0; i < got; i++) fprintf(stderr, " %g", t[i]);
        fputc('\n', stderr);
        fail();
    }
    for (int i = 0; i < n; i++) assert_true(fabs(t[i] - want[i]) <= 1e-12 * fmax(1, fabs(want[i])));
}

static void test_ticks(void **state)
{
    (void)state;
    assert_ticks(0, 1, 0, (double[]){0, 0.2, 0.4, 0.6, 0.8, 1}, 6);
    assert_ticks(0.78, 0.82, 0, (double[]){0.78, 0.79, 0.8, 0.81, 0.82}, 5);
    assert_ticks(0.771, 0.829, 0, (double[]){0.78, 0.79, 0.8, 0.81, 0.82}, 5);
    assert_ticks(-3, 3, 0, (double[]){-3, -2, -1, 0, 1, 2, 3}, 7);
    assert_ticks(0, 64, 0, (double[]){0, 10, 20, 30, 40, 50, 60}, 7);
    assert_ticks(5, 5, 0, (double[]){5}, 1);
    /* log: decades; 1-2-5 over a short range; every multiple inside one decade */
    assert_ticks(1e-4, 1e-2, 1, (double[]){1e-4, 1e-3, 1e-2}, 3);
    assert_ticks(0.8, 600, 1, (double[]){1, 10, 100}, 3);
    assert_ticks(3, 70, 1, (double[]){5, 10, 20, 50}, 4);
    assert_ticks(25, 45, 1, (double[]){30, 40}, 2);
    /* bad input */
    double t[4];
    assert_int_equal(rf_plot_ticks(0, 10, 1, t, 4), 0);
    assert_int_equal(rf_plot_ticks(2, 1, 0, t, 4), 0);
    assert_int_equal(rf_plot_ticks(NAN, 1, 0, t, 4), 0);
    assert_int_equal(rf_plot_ticks(0, 1, 0, t, 3), 3); /* capped */
}

static void test_format(void **state)
{
    (void)state;
    char b[32];
    rf_plot_format(1e-4, b, sizeof b);
    assert_string_equal(b, "1e-4");
    rf_plot_format(0.001, b, sizeof b);
    assert_string_equal(b, "0.001");
    rf_plot_format(0.30000000000000004, b, sizeof b);
    assert_string_equal(b, "0.3");
    rf_plot_format(16, b, sizeof b);
    assert_string_equal(b, "16");
    rf_plot_format(2.5e6, b, sizeof b);
    assert_string_equal(b, "2.5e+6");
    rf_plot_format(0, b, sizeof b);
    assert_string_equal(b, "0");
}

static void test_caller_ticks_and_labels(void **state)
{
    (void)state;
    double x[] = {1e-4, 3e-4, 1e-3}, y[] = {0.7, 0.8, 0.75}, e[] = {0.01, 0.01, 0.01};
    const char *lab[] = {"1e-4", "3e-4", NULL};
    rf_plot_series s = {"m", 3, x, y, e};
    rf_plot_opts o = {.log_x = 1, .n_xticks = 3, .xtick = x, .xtick_label = lab};
    char *svg;
    rf_error err;
    assert_int_equal(rf_plot_svg(&o, &s, 1, &svg, &err), RF_OK);
    assert_well_formed(svg);
    assert_int_equal(count(svg, "class=\"xlab\""), 3);
    assert_non_null(strstr(svg, ">3e-4</text>"));
    assert_non_null(strstr(svg, ">0.001</text>"));
    free(svg);
}

static void test_write_file(void **state)
{
    (void)state;
    char dir[] = "/tmp/rf-plot-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[256];
    snprintf(path, sizeof path, "%s/p.svg", dir);
    double x[] = {1, 2}, y[] = {3, 4};
    rf_plot_series s = {"a", 2, x, y, NULL};
    rf_plot_opts o = {0};
    rf_error e;
    assert_int_equal(rf_plot_svg_write(&o, &s, 1, path, &e), RF_OK);
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    char head[6] = {0};
    assert_int_equal(fread(head, 1, 5, fp), 5);
    fclose(fp);
    assert_string_equal(head, "<?xml");
    remove(path);
    snprintf(path, sizeof path, "%s/missing/p.svg", dir);
    assert_int_equal(rf_plot_svg_write(&o, &s, 1, path, &e), RF_EIO);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_checker_rejects_bad_xml),
        cmocka_unit_test(test_points_and_bars),
        cmocka_unit_test(test_nan_points_skipped),
        cmocka_unit_test(test_log_axis_needs_positive_x),
        cmocka_unit_test(test_ticks),
        cmocka_unit_test(test_format),
        cmocka_unit_test(test_caller_ticks_and_labels),
        cmocka_unit_test(test_write_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
