//! PNG plots of a run, drawn in Rust with plotters (bitmap backend, embedded DejaVu Sans so the
//! text renders the same on every machine).
use std::path::Path;
use std::sync::Once;

use anyhow::{anyhow, Result};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::run::EpochRecord;
use crate::score::metrics::{Accuracy, Group, GroupExitFractions};

static FONT: Once = Once::new();

fn register_font() {
    FONT.call_once(|| {
        let bytes: &'static [u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");
        for style in [FontStyle::Normal, FontStyle::Bold] {
            // The font is compiled in and known to parse; a failure here would only blank the text.
            let _ = plotters::style::register_font("sans-serif", style, bytes);
        }
    });
}

/// plotters' errors borrow the backend; flatten them into anyhow with the file name.
fn ctx<E: std::fmt::Debug>(path: &Path) -> impl Fn(E) -> anyhow::Error + '_ {
    move |e| anyhow!("cannot draw {}: {e:?}", path.display())
}

pub const MANY: RGBColor = RGBColor(31, 119, 180);
pub const MEDIUM: RGBColor = RGBColor(44, 160, 44);
pub const FEW: RGBColor = RGBColor(214, 39, 40);
pub const OVERALL: RGBColor = RGBColor(40, 40, 40);
const BAND: [RGBColor; 3] = [MANY, MEDIUM, FEW];

/// The legend box every chart uses, at `pos`.
fn legend<'a, DB: DrawingBackend + 'a, CT: plotters::coord::CoordTranslate>(
    chart: &mut ChartContext<'a, DB, CT>,
    pos: SeriesLabelPosition,
    path: &Path,
) -> Result<()> {
    chart
        .configure_series_labels()
        .position(pos)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(|e| anyhow!("cannot draw {}: {e:?}", path.display()))
}

/// Axes of a percentage (0–100) over epochs, with the grid every per-epoch chart uses.
fn percent_by_epoch<'a, 'b>(
    area: &'a DrawingArea<BitMapBackend<'b>, plotters::coord::Shift>,
    caption: &str,
    caption_size: u32,
    y_desc: &str,
    max_epoch: f64,
    path: &Path,
) -> Result<
    ChartContext<
        'a,
        BitMapBackend<'b>,
        Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
    >,
> {
    let err = ctx(path);
    let mut chart = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", caption_size))
        .margin(12)
        .x_label_area_size(35)
        .y_label_area_size(55)
        .build_cartesian_2d(0f64..max_epoch, 0f64..100f64)
        .map_err(&err)?;
    chart
        .configure_mesh()
        .x_desc("epoch")
        .y_desc(y_desc)
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_label_formatter(&|y| format!("{y:.0}"))
        .light_line_style(RGBColor(238, 238, 238))
        .draw()
        .map_err(&err)?;
    Ok(chart)
}

/// A curve of the accuracy chart: name, colour and how to read it from an evaluation.
type Series = (&'static str, RGBColor, fn(&Accuracy) -> Option<f64>);

/// Test accuracy per group over epochs (top) and training loss with the LR schedule (bottom);
/// the best epoch is marked in both.
pub fn training_curves(records: &[EpochRecord], best_epoch: Option<usize>, title: &str, path: &Path) -> Result<()> {
    register_font();
    let err = ctx(path);
    let root = BitMapBackend::new(path, (1000, 760)).into_drawing_area();
    root.fill(&WHITE).map_err(&err)?;
    let (top, bottom) = root.split_vertically(430);
    let max_epoch = records.iter().map(|r| r.epoch).max().unwrap_or(1).max(1) as f64;

    let mut acc =
        percent_by_epoch(&top, &format!("{title} — test accuracy"), 22, "test accuracy (%)", max_epoch, path)?;
    let series: [Series; 4] = [
        ("overall", OVERALL, |a| Some(a.overall)),
        ("many", MANY, |a| a.many),
        ("medium", MEDIUM, |a| a.medium),
        ("few", FEW, |a| a.few),
    ];
    for (name, color, get) in series {
        let pts: Vec<(f64, f64)> =
            records.iter().filter_map(|r| r.test.as_ref().and_then(get).map(|v| (r.epoch as f64, v))).collect();
        if pts.is_empty() {
            continue;
        }
        let width = if name == "overall" { 3 } else { 2 };
        acc.draw_series(LineSeries::new(pts.clone(), color.stroke_width(width)))
            .map_err(&err)?
            .label(name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(width)));
        acc.draw_series(pts.iter().map(|&p| Circle::new(p, 2, color.filled()))).map_err(&err)?;
    }
    if let Some(b) = best_epoch {
        let b = b as f64;
        let grey = RGBColor(120, 120, 120);
        acc.draw_series(DashedLineSeries::new(vec![(b, 0.0), (b, 100.0)], 6, 4, grey.stroke_width(1)))
            .map_err(&err)?
            .label(format!("best epoch ({})", b as usize))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], grey));
    }
    legend(&mut acc, SeriesLabelPosition::LowerRight, path)?;

    let losses: Vec<(f64, f64)> =
        records.iter().filter(|r| r.train_loss > 0.0).map(|r| (r.epoch as f64, r.train_loss)).collect();
    let (lo, hi) = losses.iter().fold((f64::MAX, f64::MIN), |(lo, hi), &(_, l)| (lo.min(l), hi.max(l)));
    let (lo, hi) = if losses.is_empty() { (0.01, 1.0) } else { (lo * 0.8, hi * 1.25) };
    let lrs: Vec<(f64, f64)> = records.iter().filter(|r| r.lr > 0.0).map(|r| (r.epoch as f64, r.lr)).collect();
    let (lr_lo, lr_hi) = lrs.iter().fold((f64::MAX, f64::MIN), |(lo, hi), &(_, l)| (lo.min(l), hi.max(l)));
    let (lr_lo, lr_hi) = if lrs.is_empty() { (1e-3, 1.0) } else { (lr_lo * 0.5, lr_hi * 2.0) };
    let mut loss = ChartBuilder::on(&bottom)
        .caption("training loss (left, log) and learning rate (right, log)", ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(35)
        .y_label_area_size(55)
        .right_y_label_area_size(60)
        .build_cartesian_2d(0f64..max_epoch, (lo..hi).log_scale())
        .map_err(&err)?
        .set_secondary_coord(0f64..max_epoch, (lr_lo..lr_hi).log_scale());
    loss.configure_mesh()
        .x_desc("epoch")
        .y_desc("training loss")
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_label_formatter(&|y| format!("{y:.2}"))
        .y_labels(8)
        .light_line_style(RGBColor(238, 238, 238))
        .draw()
        .map_err(&err)?;
    loss.configure_secondary_axes()
        .y_desc("learning rate")
        .y_label_formatter(&|v| format!("{v:.0e}"))
        .draw()
        .map_err(&err)?;
    loss.draw_series(LineSeries::new(losses, OVERALL.stroke_width(2)))
        .map_err(&err)?
        .label("training loss")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], OVERALL.stroke_width(2)));
    let orange = RGBColor(255, 127, 14);
    loss.draw_secondary_series(LineSeries::new(lrs, orange.stroke_width(2)))
        .map_err(&err)?
        .label("learning rate")
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], orange.stroke_width(2)));
    if let Some(b) = best_epoch {
        let b = b as f64;
        loss.draw_series(DashedLineSeries::new(vec![(b, lo), (b, hi)], 6, 4, RGBColor(120, 120, 120).stroke_width(1)))
            .map_err(&err)?;
    }
    legend(&mut loss, SeriesLabelPosition::UpperRight, path)?;
    root.present().map_err(&err)?;
    Ok(())
}

/// `select`'s plot: every kept epoch's validation accuracy and logged test accuracy, the chosen
/// epoch marked.
pub fn selection(selection: &crate::run::ValidationSelection, title: &str, path: &Path) -> Result<()> {
    let points: Vec<(usize, f64, Option<f64>)> =
        selection.candidates.iter().map(|c| (c.epoch, c.validation, c.test)).collect();
    validation_selection(&points, selection.selected.epoch, title, path)
}

/// Validation accuracy of each kept epoch against the test accuracy training logged for it, with
/// the epoch `select` chose: how well the validation set tracks the test set, and how much the
/// test set moves between neighbouring epochs. The y axis is zoomed to the data.
pub fn validation_selection(
    points: &[(usize, f64, Option<f64>)],
    selected: usize,
    title: &str,
    path: &Path,
) -> Result<()> {
    register_font();
    let err = ctx(path);
    let root = BitMapBackend::new(path, (1000, 480)).into_drawing_area();
    root.fill(&WHITE).map_err(&err)?;
    let values = points.iter().flat_map(|&(_, v, t)| std::iter::once(v).chain(t));
    let (lo, hi) = values.fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let (lo, hi) = if lo > hi { (0.0, 100.0) } else { ((lo - 1.0).floor(), (hi + 1.0).ceil()) };
    let first = points.iter().map(|p| p.0).min().unwrap_or(0) as f64;
    let last = points.iter().map(|p| p.0).max().unwrap_or(1) as f64;
    let mut chart = ChartBuilder::on(&root)
        .caption(format!("{title} — choosing the epoch on validation images"), ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(35)
        .y_label_area_size(55)
        .build_cartesian_2d((first - 0.5)..(last + 0.5), lo..hi)
        .map_err(&err)?;
    chart
        .configure_mesh()
        .x_desc("epoch")
        .y_desc("accuracy (%)")
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_label_formatter(&|y| format!("{y:.1}"))
        .light_line_style(RGBColor(238, 238, 238))
        .draw()
        .map_err(&err)?;
    let validation: Vec<(f64, f64)> = points.iter().map(|&(e, v, _)| (e as f64, v)).collect();
    let test: Vec<(f64, f64)> = points.iter().filter_map(|&(e, _, t)| t.map(|t| (e as f64, t))).collect();
    let orange = RGBColor(255, 127, 14);
    for (name, color, pts) in [("validation (chooses)", orange, validation), ("test (logged, not used)", OVERALL, test)]
    {
        if pts.is_empty() {
            continue;
        }
        chart
            .draw_series(LineSeries::new(pts.clone(), color.stroke_width(2)))
            .map_err(&err)?
            .label(name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
        chart.draw_series(pts.iter().map(|&p| Circle::new(p, 3, color.filled()))).map_err(&err)?;
    }
    let x = selected as f64;
    let grey = RGBColor(120, 120, 120);
    chart
        .draw_series(DashedLineSeries::new(vec![(x, lo), (x, hi)], 6, 4, grey.stroke_width(1)))
        .map_err(&err)?
        .label(format!("chosen epoch ({selected})"))
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], grey));
    legend(&mut chart, SeriesLabelPosition::LowerRight, path)?;
    root.present().map_err(&err)?;
    Ok(())
}

/// The share of training samples leaving at each exit, per epoch (solid lines, %): how much of
/// each batch still trains the deeper layers as the exits grow confident. Dashed: the share of
/// each Many/Medium/Few group's samples that reach the final head, which shows a starved tail.
pub fn train_exit_shares(records: &[EpochRecord], title: &str, path: &Path) -> Result<()> {
    register_font();
    let err = ctx(path);
    let rows: Vec<(f64, &Vec<f64>)> =
        records.iter().filter_map(|r| r.train_exit_fractions.as_ref().map(|f| (r.epoch as f64, f))).collect();
    let exits = rows.iter().map(|(_, f)| f.len()).max().unwrap_or(0);
    let max_epoch = records.iter().map(|r| r.epoch).max().unwrap_or(1).max(1) as f64;
    let root = BitMapBackend::new(path, (900, 460)).into_drawing_area();
    root.fill(&WHITE).map_err(&err)?;
    let mut chart = percent_by_epoch(&root, title, 20, "training samples leaving here (%)", max_epoch, path)?;
    let palette = [RGBColor(255, 127, 14), RGBColor(148, 103, 189), OVERALL];
    for k in 0..exits {
        let color = if k + 1 == exits { OVERALL } else { palette[k.min(1)] };
        let name = if k + 1 == exits { "final head".to_string() } else { format!("exit {}", k + 1) };
        let pts: Vec<(f64, f64)> = rows.iter().filter_map(|(e, f)| f.get(k).map(|v| (*e, 100.0 * v))).collect();
        chart
            .draw_series(LineSeries::new(pts, color.stroke_width(2)))
            .map_err(&err)?
            .label(name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
    }
    type Pick = fn(&GroupExitFractions) -> Option<&Vec<f64>>;
    let groups: [(&str, RGBColor, Pick); 3] = [
        ("Many", MANY, |g| g.many.as_ref()),
        ("Medium", MEDIUM, |g| g.medium.as_ref()),
        ("Few", FEW, |g| g.few.as_ref()),
    ];
    for (name, color, pick) in groups {
        let pts: Vec<(f64, f64)> = records
            .iter()
            .filter_map(|r| {
                let shares = pick(r.train_exit_fractions_by_group.as_ref()?)?;
                Some((r.epoch as f64, 100.0 * shares.last()?))
            })
            .collect();
        if pts.is_empty() {
            continue;
        }
        chart
            .draw_series(DashedLineSeries::new(pts, 5, 3, color.stroke_width(2)))
            .map_err(&err)?
            .label(format!("final head, {name}"))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
    }
    legend(&mut chart, SeriesLabelPosition::UpperRight, path)?;
    root.present().map_err(&err)?;
    Ok(())
}

/// Per-class test accuracy as bars ordered head → tail (by training count), the training count
/// of each class on a log axis beside them, and the Many/Medium/Few bands shaded.
pub fn per_class(
    accuracy: &[f64],
    train_counts: &[usize],
    groups: &[Group],
    names: &[String],
    title: &str,
    path: &Path,
) -> Result<()> {
    register_font();
    let err = ctx(path);
    let c = accuracy.len();
    let mut order: Vec<usize> = (0..c).collect();
    order.sort_by(|&a, &b| train_counts[b].cmp(&train_counts[a]).then(a.cmp(&b)));
    let width = (200 + 40 * c).clamp(900, 2400) as u32;
    let root = BitMapBackend::new(path, (width, 560)).into_drawing_area();
    root.fill(&WHITE).map_err(&err)?;
    let max_count = train_counts.iter().copied().max().unwrap_or(1).max(1) as f64;
    let min_count = train_counts.iter().copied().filter(|&n| n > 0).min().unwrap_or(1) as f64;
    let mut chart = ChartBuilder::on(&root)
        .caption(format!("{title} — per-class test accuracy, head → tail"), ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(if c <= 20 { 60 } else { 40 })
        .y_label_area_size(55)
        .right_y_label_area_size(70)
        .build_cartesian_2d(-0.5f64..(c as f64 - 0.5), 0f64..105f64)
        .map_err(&err)?
        .set_secondary_coord(-0.5f64..(c as f64 - 0.5), ((min_count / 2.0)..(max_count * 2.0)).log_scale());
    let label_every = c.div_ceil(25).max(1);
    let fmt_x = |x: &f64| {
        let i = x.round();
        if (x - i).abs() > 1e-6 || i < 0.0 || i as usize >= c || !(i as usize).is_multiple_of(label_every) {
            return String::new();
        }
        let k = order[i as usize];
        if c <= 20 {
            names.get(k).cloned().unwrap_or_else(|| k.to_string())
        } else {
            k.to_string()
        }
    };
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(c.min(100) + 1)
        .x_label_formatter(&fmt_x)
        .x_desc("class (ordered by training count)")
        .y_desc("test accuracy (%)")
        .y_label_formatter(&|y| format!("{y:.0}"))
        .light_line_style(RGBColor(238, 238, 238))
        .draw()
        .map_err(&err)?;
    chart
        .configure_secondary_axes()
        .y_desc("training images (log)")
        .y_label_formatter(&|y| format!("{y:.0}"))
        .draw()
        .map_err(&err)?;
    // Group bands behind the bars.
    for group in Group::ALL {
        let g = group.index();
        let pos: Vec<usize> = (0..c).filter(|&i| groups[order[i]] == group).collect();
        if let (Some(&first), Some(&last)) = (pos.first(), pos.last()) {
            let (x0, x1) = (first as f64 - 0.5, last as f64 + 0.5);
            chart
                .draw_series(std::iter::once(Rectangle::new([(x0, 0.0), (x1, 105.0)], BAND[g].mix(0.08).filled())))
                .map_err(&err)?;
            let label = ["Many", "Medium", "Few"][g];
            chart
                .draw_series(std::iter::once(Text::new(
                    label.to_string(),
                    (x0 + 0.1, 103.0),
                    ("sans-serif", 16).into_font().color(&BAND[g]),
                )))
                .map_err(&err)?;
        }
    }
    chart
        .draw_series((0..c).map(|i| {
            let k = order[i];
            Rectangle::new(
                [(i as f64 - 0.35, 0.0), (i as f64 + 0.35, accuracy[k])],
                BAND[groups[k].index()].mix(0.85).filled(),
            )
        }))
        .map_err(&err)?
        .label("test accuracy (bars, left)")
        .legend(|(x, y)| Rectangle::new([(x, y - 5), (x + 15, y + 5)], MANY.filled()));
    if c <= 30 {
        chart
            .draw_series((0..c).map(|i| {
                let k = order[i];
                Text::new(format!("{:.0}", accuracy[k]), (i as f64 - 0.2, accuracy[k] + 3.5), ("sans-serif", 13))
            }))
            .map_err(&err)?;
    }
    let counts: Vec<(f64, f64)> = (0..c).map(|i| (i as f64, train_counts[order[i]].max(1) as f64)).collect();
    chart
        .draw_secondary_series(LineSeries::new(counts.clone(), BLACK.stroke_width(2)))
        .map_err(&err)?
        .label("training images (line, right, log)")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLACK.stroke_width(2)));
    chart.draw_secondary_series(counts.iter().map(|&p| Circle::new(p, 3, BLACK.filled()))).map_err(&err)?;
    legend(&mut chart, SeriesLabelPosition::UpperRight, path)?;
    root.present().map_err(&err)?;
    Ok(())
}

/// Row-normalised confusion matrix as a heat map (rows: true class, columns: prediction).
pub fn confusion(matrix: &[Vec<u32>], names: &[String], title: &str, path: &Path) -> Result<()> {
    register_font();
    let err = ctx(path);
    let c = matrix.len();
    let side = (60 + 48 * c).clamp(600, 1400) as u32;
    let root = BitMapBackend::new(path, (side + 80, side + 40)).into_drawing_area();
    root.fill(&WHITE).map_err(&err)?;
    let label = |i: usize| if c <= 20 { names.get(i).cloned().unwrap_or_else(|| i.to_string()) } else { i.to_string() };
    let mut chart = ChartBuilder::on(&root)
        .caption(format!("{title} — confusion (row-normalised %)"), ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(70)
        .y_label_area_size(90)
        .build_cartesian_2d(0f64..c as f64, 0f64..c as f64)
        .map_err(&err)?;
    let step = c.div_ceil(20).max(1);
    let fmt_x = |x: &f64| {
        let i = (x - 0.5).round();
        if (x - 0.5 - i).abs() > 1e-6 || i < 0.0 || i as usize >= c || !(i as usize).is_multiple_of(step) {
            return String::new();
        }
        label(i as usize)
    };
    let fmt_y = |y: &f64| {
        let i = (y - 0.5).round();
        if (y - 0.5 - i).abs() > 1e-6 || i < 0.0 || i as usize >= c {
            return String::new();
        }
        let row = c - 1 - i as usize;
        if !row.is_multiple_of(step) {
            return String::new();
        }
        label(row)
    };
    chart
        .configure_mesh()
        .disable_mesh()
        .x_labels(2 * c + 1)
        .y_labels(2 * c + 1)
        .x_label_formatter(&fmt_x)
        .y_label_formatter(&fmt_y)
        .x_desc("predicted class")
        .y_desc("true class")
        .draw()
        .map_err(&err)?;
    let mut cells = Vec::with_capacity(c * c);
    for (r, row) in matrix.iter().enumerate() {
        let total: u32 = row.iter().sum();
        for (k, &v) in row.iter().enumerate() {
            let frac = if total == 0 { 0.0 } else { v as f64 / total as f64 };
            cells.push((r, k, frac));
        }
    }
    chart
        .draw_series(cells.iter().map(|&(r, k, f)| {
            let y = (c - 1 - r) as f64;
            let shade = |lo: f64, hi: f64| (lo + (hi - lo) * f.sqrt()) as u8;
            let color = RGBColor(shade(255.0, 8.0), shade(255.0, 48.0), shade(255.0, 107.0));
            Rectangle::new([(k as f64, y), (k as f64 + 1.0, y + 1.0)], color.filled())
        }))
        .map_err(&err)?;
    if c <= 15 {
        chart
            .draw_series(cells.iter().map(|&(r, k, f)| {
                let y = (c - 1 - r) as f64;
                let color = if f > 0.35 { WHITE } else { BLACK };
                Text::new(
                    format!("{:.0}", 100.0 * f),
                    (k as f64 + 0.3, y + 0.62),
                    ("sans-serif", 15).into_font().color(&color),
                )
            }))
            .map_err(&err)?;
    }
    root.present().map_err(&err)?;
    Ok(())
}

/// Grouped bars: for each of overall / Many / Medium / Few, one bar per named series
/// (ResLT branches alone and fused, or several runs side by side).
pub fn grouped_bars(series: &[(String, Accuracy)], title: &str, path: &Path) -> Result<()> {
    let values: Vec<(String, Vec<Option<f64>>)> =
        series.iter().map(|(n, a)| (n.clone(), vec![Some(a.overall), a.many, a.medium, a.few])).collect();
    bar_chart(&["overall", "many", "medium", "few"], &values, None, "test accuracy (%)", title, path)
}

/// Exit histogram: the share of each group's test images leaving at each exit.
pub fn exit_histogram(by_group: &[Vec<f64>], title: &str, path: &Path) -> Result<()> {
    let k = by_group.first().map_or(0, |r| r.len());
    let cats: Vec<String> =
        (0..k).map(|e| if e + 1 == k { "final head".into() } else { format!("exit {}", e + 1) }).collect();
    let cats: Vec<&str> = cats.iter().map(|c| c.as_str()).collect();
    let values: Vec<(String, Vec<Option<f64>>)> = ["Many", "Medium", "Few"]
        .iter()
        .zip(by_group)
        .map(|(g, row)| (g.to_string(), row.iter().map(|f| Some(100.0 * f)).collect()))
        .collect();
    // Many/Medium/Few keep the colours they have in every other plot.
    bar_chart(&cats, &values, Some(&BAND), "test images leaving here (%)", title, path)
}

/// Accuracy versus mean MACs over the τ sweep, with the full-depth accuracy for reference.
pub fn accuracy_vs_macs(points: &[(f64, f64, f64)], full_depth: (f64, f64), title: &str, path: &Path) -> Result<()> {
    register_font();
    let err = ctx(path);
    let root = BitMapBackend::new(path, (900, 560)).into_drawing_area();
    root.fill(&WHITE).map_err(&err)?;
    let xs = points.iter().map(|p| p.1).chain(std::iter::once(full_depth.1));
    let (x_lo, x_hi) = xs.fold((f64::MAX, f64::MIN), |(lo, hi), x| (lo.min(x), hi.max(x)));
    let ys = points.iter().map(|p| p.2).chain(std::iter::once(full_depth.0));
    let (y_lo, y_hi) = ys.fold((f64::MAX, f64::MIN), |(lo, hi), y| (lo.min(y), hi.max(y)));
    let pad_x = ((x_hi - x_lo) * 0.1).max(0.5);
    let pad_y = ((y_hi - y_lo) * 0.15).max(1.0);
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(55)
        .build_cartesian_2d((x_lo - pad_x)..(x_hi + pad_x), (y_lo - pad_y)..(y_hi + pad_y))
        .map_err(&err)?;
    chart
        .configure_mesh()
        .x_desc("mean MACs per image (millions)")
        .y_desc("test accuracy (%)")
        .light_line_style(RGBColor(238, 238, 238))
        .draw()
        .map_err(&err)?;
    let curve: Vec<(f64, f64)> = points.iter().map(|&(_, m, a)| (m, a)).collect();
    chart
        .draw_series(LineSeries::new(curve.clone(), MANY.stroke_width(2)))
        .map_err(&err)?
        .label("early exit, τ sweep")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], MANY.stroke_width(2)));
    chart.draw_series(curve.iter().map(|&p| Circle::new(p, 4, MANY.filled()))).map_err(&err)?;
    // Thresholds that land on the same point share one label ("τ=0.5–0.99"), and labels
    // alternate above and below the curve so neighbours do not print over each other.
    let mut groups: Vec<(f64, f64, f64, f64)> = Vec::new(); // (τ first, τ last, MACs, accuracy)
    for &(t, m, a) in points {
        match groups.last_mut() {
            Some(g) if (g.2 - m).abs() < 0.01 && (g.3 - a).abs() < 0.01 => g.1 = t,
            _ => groups.push((t, t, m, a)),
        }
    }
    chart
        .draw_series(groups.iter().enumerate().map(|(i, &(t0, t1, m, a))| {
            let text = if t0 == t1 { format!("τ={t0}") } else { format!("τ={t0}–{t1}") };
            let dy = if i % 2 == 0 { 0.3 } else { -0.45 };
            Text::new(text, (m, a + pad_y * dy), ("sans-serif", 13))
        }))
        .map_err(&err)?;
    chart
        .draw_series(std::iter::once(TriangleMarker::new((full_depth.1, full_depth.0), 7, FEW.filled())))
        .map_err(&err)?
        .label("no exits (full depth, plain network MACs)")
        .legend(|(x, y)| TriangleMarker::new((x + 8, y), 6, FEW.filled()));
    legend(&mut chart, SeriesLabelPosition::LowerRight, path)?;
    root.present().map_err(&err)?;
    Ok(())
}

/// Bars grouped by category, one bar per series; `None` values are left out.
pub fn bar_chart(
    cats: &[&str],
    series: &[(String, Vec<Option<f64>>)],
    colors: Option<&[RGBColor]>,
    y_desc: &str,
    title: &str,
    path: &Path,
) -> Result<()> {
    register_font();
    let err = ctx(path);
    let nc = cats.len();
    let n = series.len().max(1);
    let width = (300 + 60 * n * nc).clamp(900, 2400) as u32;
    let root = BitMapBackend::new(path, (width, 520)).into_drawing_area();
    root.fill(&WHITE).map_err(&err)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(55)
        // Headroom above 100 keeps the legend clear of the tallest bars and their labels.
        .build_cartesian_2d(-0.5f64..(nc as f64 - 0.5), 0f64..(100.0 + 8.0 * (n as f64 + 1.0)))
        .map_err(&err)?;
    let fmt_x = |x: &f64| {
        let i = x.round();
        if (x - i).abs() > 1e-6 || i < 0.0 || i as usize >= nc {
            return String::new();
        }
        cats[i as usize].to_string()
    };
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(2 * nc + 1)
        .x_label_formatter(&fmt_x)
        .y_desc(y_desc)
        .y_label_formatter(&|y| if *y <= 100.0 { format!("{y:.0}") } else { String::new() })
        .light_line_style(RGBColor(238, 238, 238))
        .draw()
        .map_err(&err)?;
    let bar = 0.8 / n as f64;
    for (j, (name, vals)) in series.iter().enumerate() {
        let color = match colors.and_then(|c| c.get(j)) {
            Some(c) => c.to_rgba(),
            None => Palette99::pick(j).to_rgba(),
        };
        let rects: Vec<(f64, f64)> =
            vals.iter().enumerate().filter_map(|(k, v)| v.map(|v| (k as f64 - 0.4 + bar * j as f64, v))).collect();
        chart
            .draw_series(rects.iter().map(|&(x, v)| Rectangle::new([(x, 0.0), (x + bar * 0.92, v)], color.filled())))
            .map_err(&err)?
            .label(name.clone())
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 15, y + 5)], color.filled()));
        if n <= 6 {
            chart
                .draw_series(
                    rects
                        .iter()
                        .map(|&(x, v)| Text::new(format!("{v:.1}"), (x + bar * 0.1, v + 3.5), ("sans-serif", 12))),
                )
                .map_err(&err)?;
        }
    }
    legend(&mut chart, SeriesLabelPosition::UpperRight, path)?;
    root.present().map_err(&err)?;
    Ok(())
}

/// One row of a horizontal bar chart: its label, one value per series (None: no bar), and a
/// note written where a missing value's bar would be (e.g. "not run", "crashed").
pub struct HBarRow {
    pub label: String,
    pub values: Vec<Option<f64>>,
    pub notes: Vec<Option<String>>,
}

/// Horizontal bars, one group per row (rows top to bottom), for tables too long for category
/// labels on an x axis. Labels are drawn left of the axis, values at the end of each bar.
pub fn horizontal_bars(
    rows: &[HBarRow],
    series: &[(&str, RGBColor)],
    x_desc: &str,
    title: &str,
    path: &Path,
) -> Result<()> {
    register_font();
    let err = ctx(path);
    let n = rows.len().max(1);
    let per_row = 14 * series.len().max(1) as u32 + 10;
    let height = 120 + per_row * n as u32;
    let root = BitMapBackend::new(path, (1300, height)).into_drawing_area();
    root.fill(&WHITE).map_err(&err)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(14)
        .x_label_area_size(40)
        .y_label_area_size(330)
        .build_cartesian_2d(0f64..105f64, 0f64..n as f64)
        .map_err(&err)?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(0)
        .x_desc(x_desc)
        .x_label_formatter(&|x| format!("{x:.0}"))
        .light_line_style(RGBColor(238, 238, 238))
        .draw()
        .map_err(&err)?;
    let slot = 0.8 / series.len().max(1) as f64;
    // Row i occupies y ∈ [n−i−1, n−i); series j is a thin band inside it.
    let band = |i: usize, j: usize| {
        let top = (n - i) as f64 - 0.1 - slot * j as f64;
        (top - slot * 0.9, top)
    };
    for (j, (name, color)) in series.iter().enumerate() {
        let color = *color;
        let bars: Vec<(usize, f64)> =
            rows.iter().enumerate().filter_map(|(i, r)| r.values.get(j).copied().flatten().map(|v| (i, v))).collect();
        chart
            .draw_series(bars.iter().map(|&(i, v)| {
                let (lo, hi) = band(i, j);
                Rectangle::new([(0.0, lo), (v, hi)], color.filled())
            }))
            .map_err(&err)?
            .label(*name)
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 15, y + 5)], color.filled()));
        let texts: Vec<(f64, f64, String)> = rows
            .iter()
            .enumerate()
            .filter_map(|(i, r)| {
                let (lo, hi) = band(i, j);
                let y = (lo + hi) / 2.0;
                match (r.values.get(j).copied().flatten(), r.notes.get(j).cloned().flatten()) {
                    (Some(v), _) => Some((v + 0.5, y, format!("{v:.1}"))),
                    (None, Some(note)) => Some((0.5, y, note)),
                    (None, None) => None,
                }
            })
            .collect();
        chart
            .draw_series(texts.into_iter().map(|(x, y, t)| {
                Text::new(
                    t,
                    (x, y),
                    TextStyle::from(("sans-serif", 11).into_font()).pos(Pos::new(HPos::Left, VPos::Center)),
                )
            }))
            .map_err(&err)?;
    }
    // Row labels, right-aligned against the y axis, in pixel coordinates of the whole image.
    let label_style = TextStyle::from(("sans-serif", 13).into_font()).pos(Pos::new(HPos::Right, VPos::Center));
    for (i, r) in rows.iter().enumerate() {
        let (px, py) = chart.backend_coord(&(0.0, (n - i) as f64 - 0.5));
        root.draw(&Text::new(r.label.clone(), (px - 8, py), label_style.clone())).map_err(&err)?;
    }
    legend(&mut chart, SeriesLabelPosition::LowerRight, path)?;
    root.present().map_err(&err)?;
    Ok(())
}

/// Reliability diagrams (Guo et al. 2017), one panel per way of scoring the same weights (as
/// trained, then each second-stage method): accuracy per confidence bin as bars, the diagonal a
/// perfectly calibrated model would sit on, the mean confidence of each bin as a dot above the
/// bin's middle (its distance to the bar is the bin's error), and the ECE in the panel's title. Bins without images draw nothing.
pub fn reliability(
    panels: &[(String, &crate::score::calibration::Calibration)],
    title: &str,
    path: &Path,
) -> Result<()> {
    register_font();
    let err = ctx(path);
    let n = panels.len().max(1);
    let cols = n.min(3);
    let rows = n.div_ceil(cols);
    let root = BitMapBackend::new(path, (380 * cols as u32, 60 + 360 * rows as u32)).into_drawing_area();
    root.fill(&WHITE).map_err(&err)?;
    let (top, body) = root.split_vertically(50);
    top.draw_text(
        &format!("{title} — reliability of the final head: accuracy per confidence bin (bars), mean confidence (dots)"),
        &("sans-serif", 22).into_text_style(&top).pos(Pos::new(HPos::Center, VPos::Center)),
        (190 * cols as i32, 25),
    )
    .map_err(&err)?;
    let orange = RGBColor(255, 127, 14);
    for ((name, cal), area) in panels.iter().zip(body.split_evenly((rows, cols))) {
        let mut chart = ChartBuilder::on(&area)
            .caption(format!("{name}: ECE {:.2}", cal.ece), ("sans-serif", 17))
            .margin(10)
            .x_label_area_size(35)
            .y_label_area_size(45)
            .build_cartesian_2d(0f64..100f64, 0f64..100f64)
            .map_err(&err)?;
        chart
            .configure_mesh()
            .x_desc("confidence (%)")
            .y_desc("accuracy (%)")
            .x_labels(6)
            .y_labels(6)
            .x_label_formatter(&|x| format!("{x:.0}"))
            .y_label_formatter(&|y| format!("{y:.0}"))
            .light_line_style(RGBColor(238, 238, 238))
            .draw()
            .map_err(&err)?;
        let filled = cal.bins.iter().filter(|b| b.count > 0);
        chart
            .draw_series(filled.clone().map(|b| {
                Rectangle::new([(100.0 * b.lower, 0.0), (100.0 * b.upper, b.accuracy)], MANY.mix(0.75).filled())
            }))
            .map_err(&err)?;
        chart
            .draw_series(LineSeries::new(vec![(0.0, 0.0), (100.0, 100.0)], RGBColor(120, 120, 120).stroke_width(1)))
            .map_err(&err)?;
        // The bin's mean confidence above its middle: its gap to the bar is the bin's error.
        let mid = |b: &crate::score::calibration::ReliabilityBin| 50.0 * (b.lower + b.upper);
        chart.draw_series(filled.map(|b| Circle::new((mid(b), b.confidence), 3, orange.filled()))).map_err(&err)?;
    }
    root.present().map_err(&err)?;
    Ok(())
}
