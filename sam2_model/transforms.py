"""Meta's SAM 2 pre- and post-processing, as pure functions.

SAM 2 was trained on images *stretched* to 1024x1024 (no letterbox): ToTensor, bilinear antialiased resize,
ImageNet normalisation. ultralytics' SAM2Predictor letterboxes instead, which is why its masks differ from Meta's;
these functions reproduce Meta's `SAM2Transforms` so our predictors give Meta's masks.
"""

from __future__ import annotations

from collections.abc import Iterator

import cv2
import numpy as np
import torch
import torch.nn.functional as F
import torchvision.transforms.functional as TF
from PIL import Image

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def to_rgb_uint8(image: np.ndarray | Image.Image) -> np.ndarray:
    """Return `image` as an HxWx3 uint8 RGB array.

    Accepts HxWx3 uint8 RGB (returned as is), HxW or HxWx1 grayscale, HxWx4 RGBA (alpha dropped) and PIL images of
    any mode. Raises ValueError for an empty image, another dtype or another shape.
    """
    if isinstance(image, Image.Image):
        if image.width == 0 or image.height == 0:
            raise ValueError(f"The image is empty ({image.width}x{image.height} pixels).")
        return np.array(image.convert("RGB"))  # a writable copy: torch refuses read-only buffers
    if not isinstance(image, np.ndarray):
        raise ValueError(f"Expected an HxWx3 uint8 RGB numpy array or a PIL image, got {type(image).__name__}.")
    if image.size == 0:
        raise ValueError(f"The image is empty (shape {image.shape}).")
    if image.dtype != np.uint8:
        raise ValueError(
            f"Expected a uint8 image (0..255), got dtype {image.dtype}. "
            "Convert it first, e.g. (image * 255).clip(0, 255).astype(np.uint8) for floats in [0, 1]."
        )
    if image.ndim == 2:
        return np.repeat(image[:, :, None], 3, axis=2)
    if image.ndim == 3 and image.shape[2] == 1:
        return np.repeat(image, 3, axis=2)
    if image.ndim == 3 and image.shape[2] == 4:
        return np.ascontiguousarray(image[:, :, :3])
    if image.ndim == 3 and image.shape[2] == 3:
        return image
    raise ValueError(f"Expected an HxWx3 RGB image (or HxW gray, HxWx4 RGBA), got shape {image.shape}.")


def images_to_batch(images: list[np.ndarray], size: int, device: torch.device) -> torch.Tensor:
    """Stack HxWx3 uint8 RGB images into the encoder's Bx3xSxS float input (stretched, normalised).

    The uint8 pixels move to `device` before the float conversion and resize, so a GPU does that work.
    """
    batch = []
    for image in images:
        pixels = np.ascontiguousarray(image)
        if not pixels.flags.writeable:  # e.g. np.asarray(pil_image): torch warns on read-only buffers, so copy
            pixels = pixels.copy()
        tensor = torch.from_numpy(pixels).to(device).permute(2, 0, 1).float().div_(255.0)
        tensor = TF.resize(tensor, [size, size], interpolation=TF.InterpolationMode.BILINEAR, antialias=True)
        batch.append(TF.normalize(tensor, IMAGENET_MEAN, IMAGENET_STD))
    return torch.stack(batch)


def coords_to_model_frame(
    coords: torch.Tensor, orig_hw: tuple[int, int], size: int, normalize_coords: bool = True
) -> torch.Tensor:
    """Map (..., 2) (x, y) coordinates to the model's SxS input frame.

    With `normalize_coords`, `coords` are pixels of the original image; otherwise they are already in [0, 1].
    """
    if normalize_coords:
        height, width = orig_hw
        coords = coords / torch.tensor([width, height], dtype=coords.dtype, device=coords.device)
    return coords * size


def masks_to_image_frame(low_res_masks: torch.Tensor, orig_hw: tuple[int, int]) -> torch.Tensor:
    """Upsample Bx C x256x256 mask logits to the original HxW image (bilinear, as Meta's predictor does)."""
    return F.interpolate(low_res_masks.float(), orig_hw, mode="bilinear", align_corners=False)


def low_res_to_mask(low_res_logits: torch.Tensor, orig_hw: tuple[int, int], threshold: float = 0.0) -> np.ndarray:
    """One 256x256 low-res logit map -> HxW bool mask at the original size (the same math as `predict`)."""
    logits = masks_to_image_frame(low_res_logits.reshape(1, 1, *low_res_logits.shape[-2:]), orig_hw)
    return (logits[0, 0] > threshold).cpu().numpy()


def low_res_to_masks(
    low_res_logits: torch.Tensor,
    orig_hw: tuple[int, int],
    threshold: float = 0.0,
    *,
    device: torch.device | None = None,
    chunk: int = 1,
) -> Iterator[np.ndarray]:
    """N x256x256 (or Nx1x256x256) low-res logits -> N HxW bool masks at the original size, in order: what
    `low_res_to_mask` gives for each, made `chunk` masks at a time on `device` (default: the logits' device) with
    one interpolate and one host transfer per chunk. Bilinear upsampling treats every mask of a batch alone, so the
    chunk size changes no pixel; it bounds memory (`chunk` x HxW float32 on `device`, as many bools on the host).
    """
    if chunk < 1:
        raise ValueError(f"chunk must be >= 1 masks, got {chunk}.")
    flat = low_res_logits.reshape(-1, 1, *low_res_logits.shape[-2:])
    for start in range(0, len(flat), chunk):
        part = flat[start : start + chunk] if device is None else flat[start : start + chunk].to(device)
        yield from (masks_to_image_frame(part, orig_hw)[:, 0] > threshold).cpu().numpy()


def fill_holes_and_sprinkles(
    logits: torch.Tensor,
    threshold: float,
    max_hole_area: float,
    max_sprinkle_area: float,
    hole_value: float | None = None,
    *,
    components: str | None = None,
) -> torch.Tensor:
    """Meta's optional mask clean-up: fill background holes and drop foreground specks up to a pixel area.

    Meta computes this with a CUDA kernel and silently skips it when the kernel is missing (always on the CPU); we do
    it everywhere. `logits` is (..., H, W) float on any device, returned as a new tensor of the same shape, dtype and
    device; holes get `hole_value` (default threshold + 10, Meta's image predictor; its video predictor uses 0.1) and
    sprinkles threshold - 10.

    components: how the 8-connected regions are measured, with the same result: "opencv" (the masks cross to the
    host in one transfer, as bools, and the changes come back in one) or "torch" (`small_regions`: tensor
    operations only, so a GPU never waits for the host). Default: OpenCV on the CPU, where it is the faster, torch
    on other devices.
    """
    if max_hole_area <= 0 and max_sprinkle_area <= 0:
        return logits
    components = components or ("opencv" if logits.device.type == "cpu" else "torch")
    if components not in ("opencv", "torch"):
        raise ValueError(f"components must be 'opencv' or 'torch', got {components!r}.")
    flat = logits.reshape(-1, *logits.shape[-2:])
    scores = flat.float()
    kinds = [
        (code, int(area_limit), region, value)
        for code, area_limit, region, value in (
            (1, max_hole_area, scores <= threshold, threshold + 10.0 if hole_value is None else hole_value),
            (2, max_sprinkle_area, scores > threshold, threshold - 10.0),
        )
        if area_limit > 0
    ]
    result = flat.clone()
    if components == "torch":
        for _, area_limit, region, value in kinds:  # holes and sprinkles are disjoint regions
            small = small_regions(region, area_limit)
            result = torch.where(small, torch.tensor(value, dtype=flat.dtype, device=flat.device), result)
        return result.reshape(logits.shape)
    regions = torch.stack([region for _, _, region, _ in kinds]).cpu().numpy()  # the one device -> host transfer
    changes = np.zeros(flat.shape, np.uint8)  # 0 keep, else the code of the kind that changes the pixel
    for (code, area_limit, _, _), kind_regions in zip(kinds, regions, strict=True):
        for index, region in enumerate(kind_regions):
            count, labels, stats, _ = cv2.connectedComponentsWithStats(region.astype(np.uint8), connectivity=8)
            small_labels = [label for label in range(1, count) if stats[label, cv2.CC_STAT_AREA] <= area_limit]
            if small_labels:
                changes[index][np.isin(labels, small_labels)] = code
    if changes.any():
        codes = torch.from_numpy(changes).to(flat.device)  # the one host -> device transfer
        for code, _, _, value in kinds:
            result = torch.where(codes == code, torch.tensor(value, dtype=flat.dtype, device=flat.device), result)
    return result.reshape(logits.shape)


def small_regions(region: torch.Tensor, max_area: int) -> torch.Tensor:
    """BxHxW bool -> BxHxW bool: the pixels of `region` whose 8-connected component (within their own mask) has at
    most `max_area` pixels, as OpenCV's `connectedComponentsWithStats` areas say, with tensor operations only (no
    host synchronisation; `max_area` + 2 3x3 poolings).

    Every region pixel starts labelled with its own index and takes its neighbours' smallest label `max_area`
    times. A component of at most `max_area` pixels is then one label throughout (no path in it is longer), and
    that label's pixels are "settled" (no region neighbour has another label). A larger component never passes:
    its smallest label has spread over more than `max_area` pixels, and any other label's pixels border pixels
    labelled otherwise (the labels settle only on whole components, each under its own smallest index).
    """
    if region.ndim != 3:
        raise ValueError(f"Expected BxHxW region masks, got shape {tuple(region.shape)}.")
    count = region.numel()
    # labels are pixel indices held in floats (pooling has no integer kernels): float32 is exact below 2**24
    dtype = torch.float32 if count < 2**24 else torch.float64
    outside = float(count)  # larger than any label: never the smallest
    index = torch.arange(count, device=region.device, dtype=dtype).reshape(region.shape)
    labels = torch.where(region, index, outside)[:, None]
    inside = region[:, None]

    def smallest_around(values: torch.Tensor) -> torch.Tensor:
        return -F.max_pool2d(-values, 3, stride=1, padding=1)

    for _ in range(max(0, int(max_area))):
        labels = torch.where(inside, smallest_around(labels), outside)
    largest_around = F.max_pool2d(torch.where(inside, labels, -1.0), 3, stride=1, padding=1)
    unsettled = inside & ((smallest_around(labels) < labels) | (largest_around > labels))
    slot = torch.where(inside, labels, outside).long().reshape(-1)  # outside pixels count in a spare slot
    sizes = torch.zeros(count + 1, device=region.device, dtype=dtype).index_add_(0, slot, inside.reshape(-1).to(dtype))
    open_labels = torch.zeros(count + 1, device=region.device, dtype=dtype)
    open_labels.index_add_(0, slot, unsettled.reshape(-1).to(dtype))
    small = inside.reshape(-1) & (sizes[slot] <= max_area) & (open_labels[slot] == 0)
    return small.reshape(region.shape)
