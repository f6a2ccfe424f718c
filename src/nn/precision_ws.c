/* precision_ws.c - a workspace's precision (rf_ws_set_precision, model.h): for bf16, a packing
 * scratch sized for every tower GEMM of forward.c and backward.c and every GEMM of a zoo model's
 * op graph (graph.c) at the workspace's batch; for
 * int8, the quantized weights of the hidden layers and the activation scratch. */
#include "nn/epi.h"
#include "nn/gemm_bf16.h"
#include "nn/gemm_int8.h"
#include "nn/model_impl.h"

int rf_bf16_supported(void) { return rf_bf16_cpu_ok(); }
int rf_int8_supported(void) { return rf_i8_cpu_ok(); }

rf_status rf_ws_set_precision(rf_workspace *ws, const rf_model *m, rf_precision p, rf_error *err)
{
    if (p != RF_PREC_FP32 && p != RF_PREC_BF16 && p != RF_PREC_INT8)
        return rf_errorf(err, RF_EUSAGE, "unknown precision %d", (int)p);
    if (p == RF_PREC_INT8 && m->graph)
        return rf_errorf(err, RF_EUSAGE,
                         "precision int8 (--precision) is implemented for the tower models (resflow, nse, esmm); "
                         "model.type %s scores in fp32 or bf16: use one of them",
                         rf_model_type_name(m->spec.model.type));
    if (p == RF_PREC_INT8 && !rf_i8_cpu_ok())
        return rf_errorf(err, RF_EUSAGE,
                         "precision int8 (--precision) needs a CPU with AVX512-VNNI instructions (AMD Zen 4, Intel "
                         "Cascade Lake, Ice Lake, Sapphire Rapids or later); this one has none (or RESFLOW_INT8=off "
                         "is set): use fp32");
    if (p == RF_PREC_BF16 && !rf_bf16_cpu_ok())
        return rf_errorf(err, RF_EUSAGE,
                         "precision bf16 (train.precision, --precision) needs a CPU with AVX512-BF16 instructions "
                         "(AMD Zen 4, Intel Cooper Lake, Sapphire Rapids or later); this one has none (or "
                         "RESFLOW_BF16=off is set): use fp32");
    if (p != RF_PREC_BF16) {
        if (ws->gws) rf_graph_ws_bf16(ws->gws, NULL);
        rf_bf16_scratch_free(ws->bf16);
        ws->bf16 = NULL;
        rf_bf16_acts_free(ws->pk);
        ws->pk = NULL;
    }
    rf_bf16_wpack_free(ws->bf16w); /* packed for the old precision (rf_ws_score_only) */
    ws->bf16w = NULL;
    rf_i8_ctx_free(ws->i8); /* int8: the weights quantized as they are now */
    ws->i8 = NULL;
    if (p == RF_PREC_FP32) return RF_OK;
    if (p == RF_PREC_INT8) {
        if (!(ws->i8 = rf_i8_ctx_create(m, ws->maxB)))
            return rf_errorf(err, RF_ENOMEM, "out of memory for the int8 weights");
        return RF_OK;
    }
    if (ws->bf16) return RF_OK;
    /* the shapes of forward.c's and backward.c's tower GEMMs, and of the zoo's graph */
    size_t an = 0, bn = 0;
    if (m->graph) rf_graph_bf16_need(m->graph, ws->maxB, &an, &bn); /* its towers are in the graph */
    int B = ws->maxB, K = m->K;
    for (int l = 0; l < (m->graph ? 0 : m->L); l++) {
        int H = m->H[l];
        if (l == 0) {
            rf_bf16_scratch_need(0, 0, B, K * H, m->In, &an, &bn); /* Z0 = x W0 */
            rf_bf16_scratch_need(0, 1, B, m->In, K * H, &an, &bn); /* dx = dZ0 W0^T */
            rf_bf16_scratch_need(1, 0, m->In, K * H, B, &an, &bn); /* dW0 = x^T dZ0 */
        } else {
            int Hp = m->H[l - 1];
            rf_bf16_scratch_need(0, 0, B, H, Hp, &an, &bn); /* per tower */
            rf_bf16_scratch_need(0, 1, B, Hp, H, &an, &bn);
            rf_bf16_scratch_need(1, 0, Hp, H, B, &an, &bn);
        }
    }
    if (!(ws->bf16 = rf_bf16_scratch_create(an, bn)))
        return rf_errorf(err, RF_ENOMEM, "out of memory for the bf16 packing buffers (%zu values)", an + bn);
    if (!m->graph && !(ws->pk = rf_bf16_acts_create(m, ws->maxB)))
        return rf_errorf(err, RF_ENOMEM, "out of memory for the bf16 activation layouts");
    if (ws->gws) rf_graph_ws_bf16(ws->gws, ws->bf16);
    return RF_OK;
}

rf_status rf_ws_score_only(rf_workspace *ws, const rf_model *m, rf_error *err)
{
    if ((!ws->bf16 && !ws->i8) || m->graph) return RF_OK; /* fp32 (no fused passes), zoo */
    if (!ws->epi && !(ws->epi = rf_epi_links_create(m))) return rf_errorf(err, RF_ENOMEM, "out of memory");
    if (ws->bf16 && !ws->bf16w && !(ws->bf16w = rf_bf16_wpack_create(m))) /* int8 quantized its weights already */
        return rf_errorf(err, RF_ENOMEM, "out of memory for the packed weights");
    rf_bf16_acts_free(ws->pk); /* the training passes' layouts: a scoring pass packs its own way */
    ws->pk = NULL;
    return RF_OK;
}
