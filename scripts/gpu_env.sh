# Set-up shared by the GPU session scripts (sourced from the repository root, after OUT is set):
# unpacks the carried trainer to $BIN, carries the font libraries the machine lacks, puts
# PyTorch's libraries on LD_LIBRARY_PATH, prints the machine, and checks that the trainer
# starts on DEVICE (one 16³ step). Defines ROOT, G, W, BIN, PYLIB, SP, T0, now and say.
# Expects .gpu/bin/edge-seg-train.gz (the trainer built with `--features tch` against the
# target's torch, stripped, gzipped) and .gpu/lib (libfontconfig, libfreetype and their
# dependencies). Env: W (work folder, /tmp/w), DEVICE (torch-cuda; torch for a dry run).
ROOT=$(pwd); G=$ROOT/.gpu; W=${W:-/tmp/w}; mkdir -p "$W/bin" "$W/lib" "$OUT"; BIN=$W/bin/edge-seg-train
gunzip -c "$G/bin/edge-seg-train.gz" > "$BIN" && chmod +x "$BIN"
T0=$(date +%s); now() { echo $(( $(date +%s) - T0 )); }; say() { echo "[$(now)s] $*"; }
PYLIB=$(python3 -c 'import torch,os;print(os.path.join(os.path.dirname(torch.__file__),"lib"))')
SP=$(python3 -c 'import site;print(site.getsitepackages()[0])')
for l in libfontconfig.so.1 libfreetype.so.6 libexpat.so.1 libpng16.so.16 libbrotlidec.so.1 libbrotlicommon.so.1; do
    ldconfig -p | grep -q "$l " || { cp "$G/lib/$l" "$W/lib/"; echo "carried $l"; }
done
export LD_LIBRARY_PATH="$PYLIB:$W/lib:${LD_LIBRARY_PATH:-}"
say "machine: $(nproc) cores, $(free -g | awk '/Mem/{print $2}') GiB; $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null)"
python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, "cudnn", torch.backends.cudnn.version(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no cuda")'
if ! "$BIN" bench --padding same --plan doubling --filters 8 --levels 4 --patch 16 --batch 1 --steps 1 \
    --device "${DEVICE:-torch-cuda}" --json; then
    ldd "$BIN" | grep -i "not found"; say "smoke test failed"; exit 3
fi
