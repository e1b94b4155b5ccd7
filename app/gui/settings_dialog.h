// Settings: model (an installed one with a plain hint, or any GGUF file), threads, attention
// mode, top-k, sinks and window, context length, longest answer, price table and library location.
#pragma once

#include <QDialog>

#include "settings.h"

class QComboBox;
class QLabel;
class QLineEdit;
class QCheckBox;
class QSpinBox;

namespace docdsa::gui {

class SettingsDialog : public QDialog {
  Q_OBJECT
 public:
  explicit SettingsDialog(const GuiSettings& s, QWidget* parent = nullptr);
  GuiSettings settings() const;
  void accept() override;

 private:
  QLineEdit *model_, *prices_, *library_;
  QSpinBox *threads_, *top_k_, *sinks_, *window_, *ctx_, *max_answer_;
  QComboBox* attention_;
  QComboBox* device_;
  QComboBox* model_choice_ = nullptr;  // installed models with a plain hint; fills model_
  QSpinBox* cache_budget_ = nullptr;
  QCheckBox* ocr_ = nullptr;
  QLineEdit* ocr_languages_ = nullptr;
  QLabel* error_;
};

}  // namespace docdsa::gui
