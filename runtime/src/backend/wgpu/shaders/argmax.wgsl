// The first channel holding the largest value, as a u32 per voxel; one
// thread per voxel.
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<u32>;

@compute @workgroup_size(64)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = flat_index(wid, nwg, lid);
    if (i >= p.grid.w) {
        return;
    }
    let channels = p.src.w;
    let e = at(p.src, p.range.z, 0u, 0u, 0u) + i * channels;
    var best = 0u;
    var best_value = bitcast<f32>(0xff800000u); // -inf
    for (var c = 0u; c < channels; c++) {
        let v = src[e + c - p.range.x];
        if (v > best_value) {
            best_value = v;
            best = c;
        }
    }
    dst[at(p.dst, p.range.z, 0u, 0u, 0u) + i - p.range.y] = best;
}
