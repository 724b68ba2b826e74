// Softmax over channels, one thread per voxel.
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;

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
    var m = bitcast<f32>(0xff800000u); // -inf
    for (var c = 0u; c < channels; c++) {
        m = max(m, src[e + c - p.range.x]);
    }
    var sum = 0.0;
    for (var c = 0u; c < channels; c++) {
        sum += exp(src[e + c - p.range.x] - m);
    }
    for (var c = 0u; c < channels; c++) {
        dst[e + c - p.range.y] = exp(src[e + c - p.range.x] - m) / sum;
    }
}
