/* Segment a NIfTI scan with libedge_seg, then a volume held in memory.
 *
 *   segment SCAN.nii.gz OUT.seg.nii.gz [MODEL.onnx]
 *
 * Without MODEL, the model built into the library is used. Prints one line
 * per structure: index, name, voxels, volume in mL.
 *
 * Build: cc segment.c -I../../include -L<target>/release -ledge_seg -o segment
 */
#include <stdio.h>
#include <stdlib.h>

#include "edge_seg.h"

static int report(void *user, size_t done, size_t total) {
    size_t *calls = (size_t *)user;
    *calls += 1;
    (void)done;
    (void)total;
    return 1; /* continue */
}

static int fail(const char *what) {
    fprintf(stderr, "segment: %s: %s\n", what, es_last_error());
    return 1;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s SCAN.nii.gz OUT.seg.nii.gz [MODEL.onnx]\n", argv[0]);
        return 2;
    }
    EsModel *model = NULL;
    EsStatus st = argc > 3 ? es_model_load(argv[3], &model) : es_model_load_default(&model);
    if (st != ES_STATUS_OK) return fail("loading the model");

    size_t labels = 0;
    es_model_label_count(model, &labels);
    double spacing[3];
    size_t tile_in[3], tile_out[3];
    es_model_geometry(model, spacing, tile_in, tile_out);
    fprintf(stderr, "libedge_seg %s: %zu labels, spacing %.2f x %.2f x %.2f mm\n", es_version(), labels,
            spacing[0], spacing[1], spacing[2]);

    EsOptions options;
    es_options_default(&options);
    size_t calls = 0;
    EsJob *job = NULL;
    st = es_segment_file(model, &options, argv[1], argv[2], report, &calls, &job);
    if (st != ES_STATUS_OK) {
        es_model_free(model);
        return fail(argv[1]);
    }
    for (size_t i = 1; i < labels; i++) {
        const char *name = NULL;
        uint64_t voxels = 0;
        double ml = 0.0;
        es_model_label_name(model, i, &name);
        es_job_structure(job, i, &voxels, &ml);
        struct EsStructureStats stats;
        es_job_structure_stats(job, i, &stats);
        /* index name voxels mL mean-intensity centroid-RAS(x y z) touches-border */
        printf("%zu %s %llu %.3f %.6f %.4f %.4f %.4f %d\n", i, name, (unsigned long long)voxels, ml, stats.mean,
               stats.centroid_ras_mm[0], stats.centroid_ras_mm[1], stats.centroid_ras_mm[2], stats.touches_border);
    }
    fprintf(stderr, "%zu progress calls\n", calls);
    es_job_free(job);

    /* The same model on a volume in memory: a 48 x 40 x 24 block of soft
     * tissue in air, 4 mm voxels, given in LPS (DICOM) and converted. */
    size_t dims[3] = {48, 40, 24};
    float *voxels = malloc(sizeof(float) * dims[0] * dims[1] * dims[2]);
    if (!voxels) return 1;
    for (size_t k = 0; k < dims[2]; k++)
        for (size_t j = 0; j < dims[1]; j++)
            for (size_t i = 0; i < dims[0]; i++) {
                int inside = i > 8 && i < 40 && j > 6 && j < 34;
                voxels[(k * dims[1] + j) * dims[0] + i] = inside ? 50.0f : -1000.0f;
            }
    double lps[16] = {4, 0, 0, -96, 0, 4, 0, -80, 0, 0, 4, 0, 0, 0, 0, 1};
    double ras[16];
    es_affine_lps_to_ras(lps, ras);
    EsJob *mem_job = NULL;
    st = es_segment_volume(model, &options, voxels, dims, ras, NULL, NULL, &mem_job);
    free(voxels);
    if (st != ES_STATUS_OK) {
        es_model_free(model);
        return fail("in-memory volume");
    }
    const uint16_t *label_map = NULL;
    size_t out_dims[3];
    es_job_labels(mem_job, &label_map, out_dims);
    size_t labelled = 0;
    for (size_t n = 0; n < out_dims[0] * out_dims[1] * out_dims[2]; n++) labelled += label_map[n] > 0;
    fprintf(stderr, "in-memory volume %zu x %zu x %zu: %zu labelled voxels\n", out_dims[0], out_dims[1], out_dims[2],
            labelled);
    es_job_free(mem_job);

    /* A bad call reports an error instead of crashing. */
    if (es_segment_volume(model, &options, NULL, dims, ras, NULL, NULL, &mem_job) != ES_STATUS_INVALID_ARGUMENT)
        return 1;
    es_model_free(model);
    return 0;
}
