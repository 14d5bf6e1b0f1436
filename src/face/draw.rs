//! Drawing faces for people to check: boxes, the five detector landmarks, the 68 points and
//! the mesh, on a copy of the image.

use opencv::core::{Mat, Point as CvPoint, Rect, Scalar};
use opencv::imgproc;

use super::{FaceBox, Point};
use crate::error::Result;
use crate::media::RgbImage;

/// Colours as BGR scalars for OpenCV.
const BOX: [f64; 3] = [0.0, 220.0, 0.0];
const FIVE: [f64; 3] = [0.0, 0.0, 255.0];
const SIXTY_EIGHT: [f64; 3] = [255.0, 255.0, 0.0];
const MESH: [f64; 3] = [200.0, 200.0, 200.0];

/// What to draw for one face.
#[derive(Debug, Clone, Default)]
pub struct FaceMarks<'a> {
    pub bbox: Option<FaceBox>,
    pub label: Option<String>,
    pub landmarks5: &'a [Point],
    pub landmarks68: &'a [Point],
    pub mesh: &'a [Point],
}

fn scalar(c: [f64; 3]) -> Scalar {
    Scalar::new(c[0], c[1], c[2], 0.0)
}

fn cv_point(p: Point) -> CvPoint {
    CvPoint::new(p[0].round() as i32, p[1].round() as i32)
}

/// Draws every face on a copy of `image`. Line widths follow the image size.
pub fn draw_faces(image: &RgbImage, faces: &[FaceMarks]) -> Result<RgbImage> {
    let mut mat: Mat = image.to_bgr_mat()?;
    let unit = ((image.width.max(image.height) as f32) / 640.0).max(1.0);
    let thick = unit.round() as i32;
    for face in faces {
        for &p in face.mesh {
            imgproc::circle(
                &mut mat,
                cv_point(p),
                thick,
                scalar(MESH),
                -1,
                imgproc::LINE_8,
                0,
            )?;
        }
        for &p in face.landmarks68 {
            imgproc::circle(
                &mut mat,
                cv_point(p),
                (2.0 * unit) as i32,
                scalar(SIXTY_EIGHT),
                -1,
                imgproc::LINE_AA,
                0,
            )?;
        }
        for &p in face.landmarks5 {
            imgproc::circle(
                &mut mat,
                cv_point(p),
                (3.0 * unit) as i32,
                scalar(FIVE),
                -1,
                imgproc::LINE_AA,
                0,
            )?;
        }
        if let Some(b) = face.bbox {
            let rect = Rect::new(
                b.x0.round() as i32,
                b.y0.round() as i32,
                b.width().round() as i32,
                b.height().round() as i32,
            );
            imgproc::rectangle(&mut mat, rect, scalar(BOX), 2 * thick, imgproc::LINE_8, 0)?;
            if let Some(label) = &face.label {
                let origin = CvPoint::new(rect.x, (rect.y - 6 * thick).max(12 * thick));
                imgproc::put_text(
                    &mut mat,
                    label,
                    origin,
                    imgproc::FONT_HERSHEY_SIMPLEX,
                    0.5 * unit as f64,
                    scalar(BOX),
                    thick,
                    imgproc::LINE_AA,
                    false,
                )?;
            }
        }
    }
    RgbImage::from_bgr_mat(&mat)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boxes_and_points_change_the_right_pixels() {
        let img = RgbImage::new(100, 100);
        let marks = FaceMarks {
            bbox: Some(FaceBox {
                x0: 10.0,
                y0: 10.0,
                x1: 60.0,
                y1: 60.0,
            }),
            landmarks5: &[[80.0, 80.0]],
            ..Default::default()
        };
        let out = draw_faces(&img, &[marks]).unwrap();
        assert_eq!(out.pixel(10, 35), [0, 220, 0], "box edge is green");
        assert_eq!(out.pixel(80, 80), [255, 0, 0], "landmark is red");
        assert_eq!(out.pixel(35, 35), [0, 0, 0], "inside stays untouched");
    }
}
