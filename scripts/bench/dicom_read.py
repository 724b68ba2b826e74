"""DICOM series reading benchmark helpers.

    dicom_read.py make DIR SLICES SIZE   -> a CT series: SLICES files of SIZE x SIZE int16
    dicom_read.py sitk DIR               -> JSON: SimpleITK read + min/max/mean, seconds
"""

import json
import os
import sys
import time

import numpy as np


def make(out, slices, size):
    import pydicom
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

    os.makedirs(out, exist_ok=True)
    study, series, frame = generate_uid(), generate_uid(), generate_uid()
    rng = np.random.default_rng(7)
    y, x = np.mgrid[0:size, 0:size]
    r = np.hypot(x - size / 2, y - size / 2)
    for k in range(slices):
        body = np.where(r < size * 0.42, 40, -1000) + 30 * np.sin(k / 9.0 + x / 17.0)
        hu = (body + rng.normal(0, 12, (size, size))).astype(np.int16)
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CTImageStorage
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = Dataset()
        ds.file_meta = meta
        ds.SOPClassUID = CTImageStorage
        ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study, series, frame
        ds.Modality = "CT"
        ds.PatientName, ds.PatientID = "Bench^Series", "BENCH"
        ds.SeriesNumber, ds.InstanceNumber = 1, k + 1
        ds.ImagePositionPatient = [-size * 0.35, -size * 0.35, 1.25 * k]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.PixelSpacing = [0.7, 0.7]
        ds.SliceThickness = 1.25
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.Rows = ds.Columns = size
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.RescaleIntercept, ds.RescaleSlope = 0, 1
        ds.PixelData = hu.tobytes()
        ds.save_as(os.path.join(out, f"ct_{k:04d}.dcm"), enforce_file_format=True)


def sitk(path):
    import SimpleITK as sitk

    t = time.perf_counter()
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(path))
    img = reader.Execute()
    a = sitk.GetArrayViewFromImage(img)
    stats = {"min": float(a.min()), "max": float(a.max()), "mean": float(a.mean(dtype=np.float64))}
    print(json.dumps({"seconds": time.perf_counter() - t, "shape": list(img.GetSize()), **stats}))


if __name__ == "__main__":
    if sys.argv[1] == "make":
        make(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    else:
        sitk(sys.argv[2])
