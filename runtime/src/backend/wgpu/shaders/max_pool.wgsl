// Max pooling without padding: kernel a.xyz, stride b.xyz (z, y, x); one
// thread per output element.
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
    let q = voxel_of(i, p.dst.w, p.dst, p.range.z);
    let z = q.x;
    let y = q.y;
    let x = q.z;
    let c = q.w;
    var m = bitcast<f32>(0xff800000u); // -inf
    for (var dz = 0u; dz < p.a.x; dz++) {
        for (var dy = 0u; dy < p.a.y; dy++) {
            for (var dx = 0u; dx < p.a.z; dx++) {
                let e = at(p.src, z * p.b.x + dz, y * p.b.y + dy, x * p.b.z + dx, c);
                m = max(m, src[e - p.range.x]);
            }
        }
    }
    dst[at(p.dst, z, y, x, c) - p.range.y] = m;
}
