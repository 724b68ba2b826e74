// Shared by every kernel: the parameters of one dispatch and the flat
// thread index. Tensors are channels-last [d, h, w, c] arrays bound from an
// aligned byte offset; `range.x` / `range.y` are the element indices where
// the input / output bindings start, so element e of a tensor is read at
// e - range.x (written at e - range.y). `range.z` / `range.w` are the
// output z-planes of this dispatch.
struct Params {
    src: vec4<u32>,   // input d, h, w, c
    dst: vec4<u32>,   // output d, h, w, c
    a: vec4<u32>,     // kernel-specific
    b: vec4<u32>,     // kernel-specific
    range: vec4<u32>, // input base, output base, first z, end z
    grid: vec4<u32>,  // kernel-specific work shape; w = threads for flat kernels
}

// Index of this thread over a flat range split into 64-wide workgroups,
// the groups laid out on a 2D grid.
fn flat_index(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
    return (wid.y * nwg.x + wid.x) * 64u + lid;
}

// Element index of (z, y, x, c) in a tensor of shape `d`.
fn at(d: vec4<u32>, z: u32, y: u32, x: u32, c: u32) -> u32 {
    return ((z * d.y + y) * d.z + x) * d.w + c;
}

// (z, y, x, c) of flat element i of a dispatch over the output planes from
// z0 of a tensor with spatial shape `d` and `channels` channels.
fn voxel_of(i: u32, channels: u32, d: vec4<u32>, z0: u32) -> vec4<u32> {
    let v = i / channels;
    return vec4<u32>(z0 + v / (d.z * d.y), (v / d.z) % d.y, v % d.z, i % channels);
}
