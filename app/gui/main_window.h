// The desktop window. For now: which model DocDSA will use and whether it loads, and where
// the library lives; the library view, reader and question panel come with the GUI issue.
#pragma once

#include <QMainWindow>

class QLabel;

namespace docdsa::gui {

class MainWindow : public QMainWindow {
  Q_OBJECT
 public:
  explicit MainWindow(QWidget* parent = nullptr);

 private:
  void check_model();
  QLabel* model_status_ = nullptr;
};

}  // namespace docdsa::gui
