//! Where a chart goes: every chart is drawn once, as SVG (`plotters`), and written as it is
//! to a `.svg` file or rasterized to a `.png` one (`resvg`). One drawing path for both
//! formats, so a PNG shows exactly what the SVG shows.
//!
//! PNG text needs a TrueType font on the host. Plotters names the generic `sans-serif`
//! family, which is mapped to the first of the usual free sans fonts the system has; with
//! none installed the PNG is refused with a reason (the SVG still works).

use std::path::Path;

/// Sans fonts tried, in order, for the PNG's text (Debian: fonts-dejavu-core).
const SANS_FAMILIES: [&str; 4] = ["DejaVu Sans", "Liberation Sans", "Noto Sans", "FreeSans"];

/// `Err` unless `path` names an .svg or .png file.
pub fn check_extension(path: &Path) -> Result<(), String> {
    match path.extension().and_then(|e| e.to_str()) {
        Some("svg" | "png") => Ok(()),
        _ => Err(format!(
            "--out {}: charts are written as .svg or .png",
            path.display()
        )),
    }
}

/// Writes `svg` to `path`: as it is for .svg, rasterized for .png.
pub fn write(path: &Path, svg: &str) -> Result<(), String> {
    check_extension(path)?;
    let bytes = if path.extension().and_then(|e| e.to_str()) == Some("png") {
        png(svg)?
    } else {
        svg.as_bytes().to_vec()
    };
    std::fs::write(path, bytes).map_err(|e| format!("{}: {e}", path.display()))
}

/// The SVG rasterized at its own size, encoded as PNG.
pub fn png(svg: &str) -> Result<Vec<u8>, String> {
    use resvg::{tiny_skia, usvg};
    let mut options = usvg::Options::default();
    let fonts = options.fontdb_mut();
    fonts.load_system_fonts();
    let family = SANS_FAMILIES
        .iter()
        .find(|family| {
            fonts.faces().any(|face| {
                face.families
                    .iter()
                    .any(|(name, _)| name.as_str() == **family)
            })
        })
        .ok_or_else(|| {
            format!(
                "no sans font found for the PNG's text (looked for {}); install one, e.g. fonts-dejavu-core, or write .svg",
                SANS_FAMILIES.join(", ")
            )
        })?;
    fonts.set_sans_serif_family(*family);
    let tree = usvg::Tree::from_str(svg, &options).map_err(|e| format!("reading the SVG: {e}"))?;
    let size = tree.size().to_int_size();
    let mut pixmap = tiny_skia::Pixmap::new(size.width(), size.height())
        .ok_or_else(|| format!("a {}x{} image", size.width(), size.height()))?;
    resvg::render(&tree, tiny_skia::Transform::default(), &mut pixmap.as_mut());
    pixmap
        .encode_png()
        .map_err(|e| format!("encoding the PNG: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_svg_and_png_are_written() {
        assert!(check_extension(Path::new("a.svg")).is_ok());
        assert!(check_extension(Path::new("a.png")).is_ok());
        assert!(check_extension(Path::new("a.jpg")).is_err());
        assert!(check_extension(Path::new("a")).is_err());
    }

    #[test]
    fn a_png_is_the_svg_rasterized_at_its_size() {
        let svg = r#"<svg xmlns="http://www.w3.org/2000/svg" width="120" height="80"><rect width="120" height="80" fill="red"/></svg>"#;
        match png(svg) {
            Ok(bytes) => {
                assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "the PNG signature");
                // IHDR: width and height, big-endian, after the signature and chunk header.
                assert_eq!(u32::from_be_bytes(bytes[16..20].try_into().unwrap()), 120);
                assert_eq!(u32::from_be_bytes(bytes[20..24].try_into().unwrap()), 80);
            }
            // A host without any of the fonts gets the reason, not a blank picture.
            Err(reason) => assert!(reason.contains("no sans font"), "{reason}"),
        }
        assert!(png("not svg").is_err());
    }
}
