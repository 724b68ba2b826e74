// Transposed convolution with kernel = stride = a.x: output voxel (z, y, x)
// reads input (z / k, y / k, x / k) through kernel tap (z % k, y % k, x % k).
// One thread per output voxel and group of 4 output channels.
// Weights: [tap][cin][cout / 4] vec4s; bias: [cout / 4] vec4s (zero-padded).
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read> weights: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> bias: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> dst: array<f32>;

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
    let k = p.a.x;
    let groups = p.a.y; // cout / 4, rounded up
    let q = voxel_of(i, groups, p.dst, p.range.z);
    let z = q.x;
    let y = q.y;
    let x = q.z;
    let g = q.w;
    let tap = ((z % k) * k + y % k) * k + x % k;
    let cin = p.src.w;
    let s = at(p.src, z / k, y / k, x / k, 0u) - p.range.x;
    let w = tap * cin * groups + g;
    var acc = bias[g];
    for (var c = 0u; c < cin; c++) {
        acc += src[s + c] * weights[w + c * groups];
    }
    let cout = p.dst.w;
    let o = at(p.dst, z, y, x, 0u) - p.range.y;
    for (var j = 0u; j < 4u; j++) {
        let co = g * 4u + j;
        if (co < cout) {
            dst[o + co] = acc[j];
        }
    }
}
