/* badam report page: draws the charts of a training report with uPlot (vendored, inlined above
 * this script) from the run data embedded in <script id="badam-data" type="application/json">.
 * Runs are overlaid in every line chart, one color per run (the summary table shows the swatch);
 * validation loss is the dashed line with points. Each chart container gets data-plot-rect =
 * "x,y,w,h" (its plot area in page pixels) and data-colors (the series colors drawn there) so the
 * headless-browser test can check the rendered pixels; body gets data-charts (charts drawn) and
 * data-error (a script error, if any). */
(function () {
  'use strict';
  var PALETTE = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2',
                 '#17becf'];
  var PREDICTED = '#9ecae1', MEASURED = '#08519c';
  var WIDE = 660, SMALL = 430, HEIGHT = 260;

  function color(i) { return PALETTE[i % PALETTE.length]; }

  /* [xs, ys] with null ys kept (as gaps) and repeated or decreasing xs dropped (uPlot needs
   * strictly increasing x per table). */
  function table(xs, ys) {
    var ox = [], oy = [];
    for (var i = 0; i < xs.length; i++) {
      if (xs[i] === null || ys[i] === undefined) continue;
      if (ox.length && xs[i] <= ox[ox.length - 1]) continue;
      ox.push(xs[i]);
      oy.push(ys[i]);
    }
    return [ox, oy];
  }

  function container(id, title, cls) {
    var div = document.getElementById(id);
    div.className = 'chart ' + (cls || '');
    var h = document.createElement('h3');
    h.textContent = title;
    div.appendChild(h);
    return div;
  }

  function note(div, text) {
    var p = document.createElement('div');
    p.className = 'note';
    p.textContent = text;
    div.appendChild(p);
  }

  /* uPlot hooks that record, after every draw, where the plot area is and which colors it
   * shows (for the headless-browser test); the first draw counts the chart as drawn. */
  function drawnHooks(div, colors) {
    return {
      draw: [function (u) {
        var r = u.over.getBoundingClientRect();
        div.setAttribute('data-plot-rect', [Math.round(r.left + window.scrollX),
          Math.round(r.top + window.scrollY), Math.round(r.width), Math.round(r.height)].join(','));
        div.setAttribute('data-colors', colors.join(','));
        if (!div.hasAttribute('data-drawn')) {
          div.setAttribute('data-drawn', '1');
          var n = +(document.body.getAttribute('data-charts') || 0) + 1;
          document.body.setAttribute('data-charts', String(n));
        }
      }]
    };
  }

  /* A line chart of several (x, y) tables overlaid; series[i] = {label, stroke, dash, points,
   * stepped} describes tables[i]. */
  function lineChart(id, title, xLabel, yLabel, tables, series, extra) {
    var div = container(id, title, '');
    if (!tables.length) {
      note(div, extra && extra.empty ? extra.empty : 'no data');
      return;
    }
    var joined = uPlot.join(tables);
    var opts = {
      width: WIDE,
      height: HEIGHT,
      scales: { x: { time: false } },
      axes: [{ label: xLabel }, { label: yLabel, size: 70 }],
      series: [{ label: xLabel }],
      legend: { live: true }
    };
    var colors = [];
    series.forEach(function (s) {
      var o = { label: s.label, stroke: s.stroke, width: 2, spanGaps: false, /* null (a non-finite value) is a gap */
                points: { show: !!s.points, size: 6, fill: s.stroke } };
      if (s.dash) o.dash = [6, 4];
      if (s.stepped) o.paths = uPlot.paths.stepped({ align: 1 });
      opts.series.push(o);
      if (colors.indexOf(s.stroke) < 0) colors.push(s.stroke);
    });
    if (extra && extra.yValues) opts.axes[1].values = extra.yValues;
    if (extra && extra.ySplits) opts.axes[1].splits = extra.ySplits;
    if (extra && extra.yLog) opts.scales.y = { distr: 3 };
    if (extra && extra.yRange) opts.scales.y = { range: extra.yRange };
    if (extra && extra.integerY) opts.scales.y = { range: function (u, lo, hi) { return [lo - 0.5, hi + 0.5]; } };
    if (extra && extra.axisSize) opts.axes[1].size = extra.axisSize;
    opts.hooks = drawnHooks(div, colors);
    new uPlot(opts, joined, div);
  }

  /* Predicted vs measured bytes by category for one run, as grouped bars (MiB). */
  function memoryChart(id, run) {
    var div = container(id, run.name + ' (' + run.method + ')', 'small');
    var m = run.memory;
    if (!m) {
      note(div, 'no memory.json in this run (did it finish?)');
      return;
    }
    var cats = ['weights', 'master', 'gradients', 'optimizer', 'activations', 'workspace', 'total'];
    var SHORT = ['weights', 'master', 'grads', 'optim.', 'activ.', 'workspace', 'total/RSS'];
    var MiB = 1024 * 1024, xs = [], pred = [], meas = [];
    cats.forEach(function (c, i) {
      xs.push(i);
      var p = m.predicted ? m.predicted[c] : null;
      var q = c === 'total' ? m.peak_rss : (m.measured_peak ? m.measured_peak[c] : null);
      pred.push(p === null || p === undefined ? null : p / MiB);
      meas.push(q === null || q === undefined ? null : q / MiB);
    });
    var bars = function (align) { return uPlot.paths.bars({ size: [0.38, 60], align: align }); };
    new uPlot({
      width: SMALL,
      hooks: drawnHooks(div, [PREDICTED, MEASURED]),
      height: HEIGHT,
      scales: { x: { time: false, range: [-0.6, cats.length - 0.4] }, y: { range: function (u, lo, hi) { return [0, hi * 1.08 || 1]; } } },
      axes: [
        { splits: function () { return xs; }, values: function (u, ticks) {
            return ticks.map(function (t) { return SHORT[t] || ''; });
          }, rotate: 0, font: '10px sans-serif', grid: { show: false } },
        { label: 'MiB', size: 60 }
      ],
      series: [
        { label: 'category', value: function (u, v) { return v === null ? '-' : cats[v]; } },
        { label: 'predicted', stroke: PREDICTED, fill: PREDICTED, width: 1, paths: bars(-1), points: { show: false } },
        { label: 'measured', stroke: MEASURED, fill: MEASURED, width: 1, paths: bars(1), points: { show: false } }
      ]
    }, [xs, pred, meas], div);
  }

  /* The elapsed seconds of each evaluation: those of the last step at or before it. */
  function evalSeconds(r) {
    var out = [], k = 0, t = null;
    r.eval_step.forEach(function (s) {
      while (k < r.step.length && r.step[k] <= s) {
        if (r.elapsed_s[k] !== null) t = r.elapsed_s[k];
        k++;
      }
      out.push(t);
    });
    return out;
  }

  function draw() {
    var data = JSON.parse(document.getElementById('badam-data').textContent);
    var runs = data.runs;
    var lossStep = [], lossStepS = [], lossTok = [], lossTokS = [], lr = [], lrS = [];
    var lossSec = [], lossSecS = [];
    var blocks = [], blocksS = [], tps = [], tpsS = [], gn = [], gnS = [];
    var blockNames = {};
    runs.forEach(function (r, i) {
      var c = color(i), name = r.name;
      lossStep.push(table(r.step, r.loss));
      lossStepS.push({ label: name + ' train', stroke: c });
      lossTok.push(table(r.tokens, r.loss));
      lossTokS.push({ label: name + ' train', stroke: c });
      lossSec.push(table(r.elapsed_s, r.loss));
      lossSecS.push({ label: name + ' train', stroke: c });
      if (r.eval_step.length) {
        lossStep.push(table(r.eval_step, r.val_loss));
        lossStepS.push({ label: name + ' val', stroke: c, dash: true, points: true });
        lossTok.push(table(r.eval_tokens, r.val_loss));
        lossTokS.push({ label: name + ' val', stroke: c, dash: true, points: true });
        lossSec.push(table(evalSeconds(r), r.val_loss));
        lossSecS.push({ label: name + ' val', stroke: c, dash: true, points: true });
      }
      lr.push(table(r.step, r.lr));
      lrS.push({ label: name, stroke: c });
      tps.push(table(r.step, r.tokens_per_s));
      tpsS.push({ label: name, stroke: c });
      gn.push(table(r.step, r.grad_norm));
      gnS.push({ label: name, stroke: c });
      if (r.block) {
        blocks.push(table(r.step, r.block));
        blocksS.push({ label: name, stroke: c, stepped: true });
        for (var k in r.block_names) blockNames[k] = r.block_names[k];
      }
    });
    lineChart('chart-loss-step', 'Loss against step (solid: train, dashed: validation)', 'step',
              'loss', lossStep, lossStepS);
    lineChart('chart-loss-tokens', 'Loss against trained tokens', 'trained tokens', 'loss',
              lossTok, lossTokS);
    lineChart('chart-loss-seconds', 'Loss against training time', 'seconds', 'loss', lossSec,
              lossSecS);
    lineChart('chart-lr', 'Learning rate', 'step', 'lr', lr, lrS, { axisSize: 80 });
    lineChart('chart-block', 'Active block (BAdam, SGD-BCD)', 'step', 'block', blocks, blocksS, {
      integerY: true,
      empty: 'no block-wise run (only BAdam and SGD-BCD train one block at a time)',
      axisSize: 130,
      /* one tick per block when there are few, else uPlot's own spacing */
      ySplits: function (u, axisIdx, lo, hi, incr) {
        var a = Math.ceil(lo), b = Math.floor(hi), s = [];
        var step = b - a > 16 ? Math.ceil(incr) : 1;
        for (var t = a; t <= b; t += step) s.push(t);
        return s;
      },
      yValues: function (u, ticks) {
        return ticks.map(function (t) {
          if (t !== Math.round(t)) return '';
          return blockNames[t] !== undefined ? t + ' ' + blockNames[t] : String(t);
        });
      }
    });
    lineChart('chart-throughput', 'Throughput (all tokens processed per second)', 'step',
              'tokens/s', tps, tpsS);
    lineChart('chart-grad-norm', 'Gradient norm', 'step', 'grad norm', gn, gnS);
    runs.forEach(function (r, i) { memoryChart('chart-memory-' + i, r); });
  }

  window.addEventListener('error', function (e) {
    document.body.setAttribute('data-error', String(e.message));
  });
  try {
    draw();
  } catch (e) {
    document.body.setAttribute('data-error', String(e && e.stack ? e.stack : e));
    var p = document.createElement('p');
    p.className = 'warn';
    p.textContent = 'chart error: ' + e;
    document.body.appendChild(p);
  }
})();
