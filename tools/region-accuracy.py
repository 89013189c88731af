#!/usr/bin/env python3
"""The element's accuracy in video, on the frames where it looks only around the tracked faces
(the regions) and on those where it searches the whole frame: ferfilter (smoothing=0,
classify-interval=1, flip-alternate=false: each frame's label is that frame's own full
classification) on 20-frame clips of 12 PublicTest faces (1280x720, 110 px, `fer scene`),
each face's label against FER2013's. For comparing builds of the plugin (tools/bench-builds.sh
measures their speed).
usage: tools/region-accuracy.py PLUGIN_DIR [SETS]   (SETS of 12 faces, 50 by default: 600 faces)
Needs .build/release/fer and FER2013 beside the checkout.
"""
import csv, gzip, json, os, subprocess, sys, tempfile
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..')
TMP = tempfile.mkdtemp(prefix='region-accuracy-')
plugin = os.path.abspath(sys.argv[1]); sets = int(sys.argv[2]) if len(sys.argv) > 2 else 50
rows = [r for r in csv.DictReader(gzip.open(os.path.join(ROOT, '../shared/data/fer2013/fer2013.csv.gz'), 'rt')) if r['Usage'] == 'PublicTest']
env = dict(os.environ, GST_PLUGIN_PATH_1_0=plugin, GST_REGISTRY_1_0=os.path.join(TMP, 'registry.bin'),
           GST_PLUGIN_SYSTEM_PATH_1_0='/usr/lib/x86_64-linux-gnu/gstreamer-1.0')
env.pop('GST_PLUGIN_PATH', None)
right = total = found = 0; whole_right = whole_total = 0
for s in range(sets):
    first = s * 12
    clip = os.path.join(TMP, f'clip-{first}.gray')
    if not os.path.exists(clip):
        subprocess.run([os.path.join(ROOT, '.build/release/fer'), 'scene', '--frames', '20', '--faces', '12', '--size', '110', '--first', str(first),
                        '--width', '1280', '--height', '720', '--output', clip], check=True, capture_output=True)
    out = os.path.join(TMP, 'results.jsonl')
    subprocess.run(['gst-launch-1.0', '-q', 'filesrc', f'location={clip}', '!', 'rawvideoparse', 'format=gray8', 'width=1280', 'height=720',
                    'framerate=30/1', '!', 'ferfilter', 'skip-late=false', 'smoothing=0', 'classify-interval=1', 'flip-alternate=false',
                    f'results={out}', '!', 'fakesink'], check=True, env=env, capture_output=True)
    lines = [json.loads(l) for l in open(out)][:-1]
    for fr in lines:
        n = fr['frame']
        faces = fr['faces']
        # grid cell -> row: 12 faces in 4 columns x 3 rows, row-major
        for f in faces:
            cx = f['x'] + f['width'] / 2; cy = f['y'] + f['height'] / 2
            col = min(3, int(cx / (1280 / 4))); row = min(2, int(cy / (720 / 3)))
            truth = int(rows[first + row * 4 + col]['emotion'])
            ok = f['label_id'] == truth
            if n % 4 == 0: whole_total += 1; whole_right += ok
            else: total += 1; right += ok
        if n % 4 != 0: found += len(faces)
print(f'{plugin}: region frames: {right}/{total} right ({right/max(1,total):.4f}), faces/frame {found/ max(1, sets*15):.2f}; '
      f'whole-frame frames: {whole_right}/{whole_total} ({whole_right/max(1,whole_total):.4f})')
subprocess.run(['rm', '-rf', TMP])
