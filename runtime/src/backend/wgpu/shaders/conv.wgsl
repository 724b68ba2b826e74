// 3D convolution (stride 1), bias, optional ReLU, tiled in workgroup memory.
//
// The constants K (kernel edge), BX, BY, BZ (output block), COB (output
// channels per block) and CIC (input channels per chunk) are prepended by
// the host. Each workgroup of 64 threads computes a BZ x BY x BX block of
// output voxels for COB output channels. For each chunk of CIC input
// channels it stages the input patch the block reads (the block grown by
// K - 1) and the chunk's weights for its COB channels in workgroup memory,
// then every thread accumulates 4 consecutive voxels along x for 4
// channels from there. Input values outside the tensor are the zero padding.
//
// Params: a.xyz = leading padding (z, y, x), a.w = 1 for ReLU,
//         b.x = output channels padded to a multiple of 4, divided by 4,
//         grid = blocks along x, y, z (of this dispatch) and channels.
// Weights: [cin][K*K*K][cout / 4] vec4s; bias: [cout] (zero-padded).
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read> weights: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> dst: array<f32>;

const K3: u32 = K * K * K;
const PX: u32 = BX + K - 1u;
const PY: u32 = BY + K - 1u;
const PZ: u32 = BZ + K - 1u;
const PATCH: u32 = PX * PY * PZ;
// Threads per voxel group (one per 4 output channels) and voxel groups along x.
const CG: u32 = COB / 4u;
const VX: u32 = BX / 4u;

// Input patch, [pz][py][px][c].
var<workgroup> tile_in: array<f32, PATCH * CIC>;
// Weights of the chunk, [c][tap][channel group].
var<workgroup> wtile: array<vec4<f32>, K3 * CIC * CG>;

@compute @workgroup_size(64)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let g = p.grid;
    let wg = wid.y * nwg.x + wid.x;
    if (wg >= g.x * g.y * g.z * g.w) {
        return;
    }
    let ox0 = (wg % g.x) * BX;
    let oy0 = ((wg / g.x) % g.y) * BY;
    let oz0 = p.range.z + ((wg / (g.x * g.y)) % g.z) * BZ;
    let cg0 = (wg / (g.x * g.y * g.z)) * CG;
    let cin = p.src.w;
    let groups = p.b.x;
    let pad = vec3<i32>(p.a.xyz);
    let dims = vec3<i32>(p.src.xyz);

    // This thread: voxels (tz, ty, tx..tx+3) of the block, channel group cg.
    let cg = lid % CG;
    let vg = lid / CG;
    let tx = (vg % VX) * 4u;
    let ty = (vg / VX) % BY;
    let tz = vg / (VX * BY);

    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    for (var ci0 = 0u; ci0 < cin; ci0 += CIC) {
        for (var i = lid; i < PATCH * CIC; i += 64u) {
            let c = i % CIC;
            let v = i / CIC;
            let q = vec3<i32>(vec3<u32>(oz0 + v / (PX * PY), oy0 + (v / PX) % PY, ox0 + v % PX)) - pad;
            var value = 0.0;
            if (all(q >= vec3<i32>(0)) && all(q < dims) && ci0 + c < cin) {
                value = src[at(p.src, u32(q.x), u32(q.y), u32(q.z), ci0 + c) - p.range.x];
            }
            tile_in[i] = value;
        }
        for (var i = lid; i < K3 * CIC * CG; i += 64u) {
            let j = i % CG;
            let tap = (i / CG) % K3;
            let c = i / (CG * K3);
            var w = vec4<f32>(0.0);
            if (ci0 + c < cin && cg0 + j < groups) {
                w = weights[((ci0 + c) * K3 + tap) * groups + cg0 + j];
            }
            wtile[i] = w;
        }
        workgroupBarrier();
        for (var c = 0u; c < CIC; c++) {
            for (var kz = 0u; kz < K; kz++) {
                for (var ky = 0u; ky < K; ky++) {
                    for (var kx = 0u; kx < K; kx++) {
                        let w = wtile[(c * K3 + (kz * K + ky) * K + kx) * CG + cg];
                        let s = (((tz + kz) * PY + ty + ky) * PX + tx + kx) * CIC + c;
                        acc0 += tile_in[s] * w;
                        acc1 += tile_in[s + CIC] * w;
                        acc2 += tile_in[s + 2u * CIC] * w;
                        acc3 += tile_in[s + 3u * CIC] * w;
                    }
                }
            }
        }
        workgroupBarrier();
    }

    let oy = oy0 + ty;
    let oz = oz0 + tz;
    if (oy >= p.dst.y || oz >= p.range.w) {
        return;
    }
    let cout = p.dst.w;
    var acc = array<vec4<f32>, 4>(acc0, acc1, acc2, acc3);
    for (var v = 0u; v < 4u; v++) {
        let ox = ox0 + tx + v;
        if (ox < p.dst.z) {
            let o = at(p.dst, oz, oy, ox, 0u) - p.range.y;
            for (var j = 0u; j < 4u; j++) {
                let co = (cg0 + cg) * 4u + j;
                if (co < cout) {
                    var r = acc[v][j] + bias[co];
                    if (p.a.w == 1u) {
                        r = max(r, 0.0);
                    }
                    dst[o + co] = r;
                }
            }
        }
    }
}
