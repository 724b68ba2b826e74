// Nearest upsampling by whole factors a.xyz (z, y, x): output index i reads
// input floor(i / s). One thread per output element.
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
    let e = at(p.src, z / p.a.x, y / p.a.y, x / p.a.z, c);
    dst[at(p.dst, z, y, x, c) - p.range.y] = src[e - p.range.x];
}
