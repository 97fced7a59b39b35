export function PredictionsPage() {
  return null;
}
