"""Side by side: our packer vs MXNet's tools/im2rec.py, then the training pipeline's speed.

    OMP_NUM_THREADS=2 python scripts/dataset/benchmark_im2rec.py [--images DIR] [--count 240] \
        [--size 1600x1200] [--resize 480] [--quality 95] [--workers 2]

Without --images it writes --count real-photo JPEGs (crops of scikit-learn's sample photos,
upscaled to --size) into a temp folder. Both packers get the same images, resize, quality and
worker count; both timings include process start-up. Then it reads our .rec with the training
loader (224 crops; C++ and Python back-ends) and reports images/s per core.
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--images', help='folder of class sub-folders (default: synthesize)')
    parser.add_argument('--count', type=int, default=240)
    parser.add_argument('--size', default='1600x1200', help='WxH of synthesized images')
    parser.add_argument('--resize', type=int, default=480)
    parser.add_argument('--quality', type=int, default=95)
    parser.add_argument('--workers', type=int, default=os.cpu_count() or 1)
    parser.add_argument('--batches', type=int, default=20, help='loader batches to time')
    return parser.parse_args(argv)


def synthesize(folder, count, size):
    import cv2
    from sklearn.datasets import load_sample_images
    width, height = (int(v) for v in size.split('x'))
    rng = np.random.RandomState(0)
    sources = load_sample_images().images
    for i in range(count):
        src = sources[i % 2]
        top, left = rng.randint(0, 100), rng.randint(0, 160)
        crop = src[top:top + 320, left:left + 480, ::-1]
        img = cv2.resize(crop, (width, height), interpolation=cv2.INTER_CUBIC)
        path = os.path.join(folder, f'class{i % 4}', f'photo {i:04d}.jpg')
        os.makedirs(os.path.dirname(path), exist_ok=True)
        cv2.imwrite(path, img, [cv2.IMWRITE_JPEG_QUALITY, 92])
    return count


def timed(cmd):
    start = time.time()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.time() - start


def mxnet_im2rec(images, prefix, args):
    import mxnet
    tool = os.path.join(os.path.dirname(mxnet.__file__), 'tools', 'im2rec.py')
    subprocess.run([sys.executable, tool, '--list', '--recursive', prefix, images], check=True,
                   stdout=subprocess.DEVNULL)
    return timed([sys.executable, tool, '--resize', str(args.resize), '--quality',
                  str(args.quality), '--num-thread', str(args.workers), prefix + '.lst', images])


def ours(images, prefix, args):
    return timed([sys.executable, os.path.join(HERE, 'im2rec.py'), images, prefix,
                  '--resize', str(args.resize), '--quality', str(args.quality),
                  '--workers', str(args.workers), '--no-progress'])


def loader_speed(rec, backend, workers, batches):
    from resnest.gluon.data import train_loader
    loader = train_loader(rec, 32, input_size=224, num_workers=workers, backend=backend)
    loader.set_epoch(0)
    seen, start, done = 0, None, 0
    while done < batches:
        for data, _, _ in loader:
            data.wait_to_read()
            if start is None:
                start = time.time()  # first batch includes start-up: not timed
            else:
                seen += data.shape[0]
            done += 1
            if done >= batches:
                break
    return seen / (time.time() - start)


def main(argv=None):
    """Run the benchmark and print a small table; returns 0."""
    args = parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        images = args.images or os.path.join(tmp, 'images')
        if not args.images:
            synthesize(images, args.count, args.size)
        count = sum(len(f) for _, _, f in os.walk(images))
        t_mx = mxnet_im2rec(images, os.path.join(tmp, 'mx'), args)
        t_ours = ours(images, os.path.join(tmp, 'ours'), args)
        print(f'{count} images, resize {args.resize}, quality {args.quality}, '
              f'{args.workers} workers')
        print(f'  MXNet tools/im2rec.py : {count / t_mx:7.1f} img/s ({t_mx:.1f} s)')
        print(f'  ours (im2rec.py)      : {count / t_ours:7.1f} img/s ({t_ours:.1f} s)'
              f'  -> {t_mx / t_ours:.2f}x')
        cores = os.cpu_count() or 1
        rec = os.path.join(tmp, 'ours.rec')
        for backend in ('rec', 'python'):
            speed = loader_speed(rec, backend, cores, args.batches)
            print(f'  train loader {backend:6s} 224px: {speed:7.1f} img/s, '
                  f'{speed / cores:.1f} img/s per core')
    return 0


if __name__ == '__main__':
    sys.exit(main())
