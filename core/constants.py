"""Every number of the model and its front end, in one place.

Values follow `technical-spec.md` with the corrections recorded in `docs/DECISIONS.md`.
"""

from __future__ import annotations

# --- audio front end -------------------------------------------------------------
SAMPLE_RATE = 16_000
N_FFT = 1024  # analysis window (Hann), centred on each frame's time
N_MELS = 80
FMIN = 80.0
FMAX = 8000.0
LOG_EPS = 1e-6  # log(mel_power + LOG_EPS): finite for digital silence
SUPPORTED_FPS = (30, 60)

# Context frames per fps: the spec's powers of two (8.53 s at both rates).
CONTEXT_FRAMES = {30: 256, 60: 512}
# Short-term detail: the newest 3 mel frames, concatenated (spec: "3 frames temporal concatenation").
DETAIL_FRAMES = 3
# Mel frames between the 3 detail tokens (j, j-s, j-2s). At 60 fps the look-ahead is 4 frames, so with
# s = 1 they would all lie 33-67 ms in the future; s = 2 reaches the output frame's own time
# (docs/DECISIONS.md, "Detail tokens at 60 fps").
DETAIL_SPACING = {30: 1, 60: 2}
# Output frame k may look this many frames past its own time (lip shapes anticipate sound).
# Algorithmic latency on device = LOOKAHEAD_FRAMES / fps + half an analysis window (32 ms).
LOOKAHEAD_FRAMES = {30: 2, 60: 4}

# Offline model (many frames per call, `a2bs infer` on files): mel frames per call, and frames per band of the
# windowed attention (its constant band of position weights is N x (group + N - 1) per head and query).
# Chosen by timing on the 2-core CI machine (docs/DECISIONS.md, "The offline model").
OFFLINE_FRAMES = 32
OFFLINE_GROUP = {30: 4, 60: 2}  # 60 fps: a band half the size keeps `a2bs infer` under 100 MB

# --- emotion stream -------------------------------------------------------------
EGEMAPS_DIM = 88
EMOTION_WINDOW_S = 20.0
EMOTION_OFFSETS_S = (0.0, 0.3, 0.6)  # windows end at t, t - 0.3 s, t - 0.6 s
EMOTION_DIM = EGEMAPS_DIM * len(EMOTION_OFFSETS_S)  # 264
EMOTION_MIN_WINDOW_S = 0.5  # shorter windows are zero-padded at the start
EMOTION_TOKENS = 4  # key/value tokens the compressed emotion vector is split into

# --- model ----------------------------------------------------------------------
D_MODEL = 256
N_HEADS = 8
N_BLENDSHAPES = 52
DECODER_HIDDEN = 64
TAU_MIN = 0.05
TAU_MAX = 0.5

# --- training -------------------------------------------------------------------
BATCH_SIZE = 4
LEARNING_RATE = 3e-4
W_MSE = 1.0
W_L1 = 0.1
W_PERCEPTUAL = 0.5
W_TEMPORAL = 0.2
W_SMOOTHING = 0.1
# The spec leaves the mouth/expression split of the perceptual loss open: lip sync matters most.
W_MOUTH = 1.0
W_EXPRESSION = 0.5
# Smoothing target per fps. The spec's "typically 0.1-0.2" would give a time constant of ~6 frames
# (190 ms at 30 fps) and make bilabial closures within one frame impossible; these targets keep
# the lag under ~1.5 frames (docs/DECISIONS.md).
ALPHA_TARGET = {30: 0.7, 60: 0.5}

# --- the life layer (core/life.py) ------------------------------------------------
# ARKit's lips meet when mouthClose ~ jawOpen: a lip gap (jawOpen - mouthClose) at most this counts as sealed
# (the articulation benchmark's seal rate; the face controls' lip offset leaves such frames sealed).
SEAL_GAP = 0.03
LIFE_MAX_SEED = (1 << 32) - 1  # seeds are uint32: stream i of SplitMix64 starts at seed * 4 + i

# --- targets --------------------------------------------------------------------
RTF_TARGET = 0.1
MEMORY_TARGET_MB = 500
MODEL_SIZE_TARGET_MB = 10
